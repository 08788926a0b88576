using System.CommandLine;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb run</c>: pre-fill a prompt, decode greedily, report the measured footprint.</summary>
public static class RunCommand
{
    public static Command Create(MethodRegistry registry)
    {
        var model = new Option<string>("--model") { Description = "Model folder (Hugging Face layout)", Required = true };
        var tokens = new Option<string>("--tokens") { Description = "Prompt token ids, e.g. \"1 2 3\"", Required = true };
        var gen = new Option<int>("--gen-tokens") { Description = "Tokens to generate greedily", DefaultValueFactory = _ => 16 };
        var timeline = new Option<string?>("--timeline") { Description = "Write the per-step timeline (entries and bytes held, per chunk and decode step) to this CSV file" };
        var json = Cli.JsonOption();
        var methodOptions = new MethodOptions(registry);
        var cmd = new Command("run", "Pre-fill and decode greedily under an eviction method and schedule; prints generated ids, measured footprint, peak KV, peak entries and bytes held");
        cmd.Options.Add(model);
        cmd.Options.Add(tokens);
        cmd.Options.Add(gen);
        methodOptions.AddTo(cmd);
        cmd.Options.Add(timeline);
        cmd.Options.Add(json);
        cmd.SetAction(p => Cli.Run(() =>
        {
            int genTokens = p.GetValue(gen);
            if (genTokens < 0) throw new ArgumentException($"--gen-tokens must be ≥ 0 (got {genTokens})");
            var prompt = Cli.ParseTokens(p.GetValue(tokens)!);
            var weights = LlamaWeights.Load(p.GetValue(model)!);
            var chunking = methodOptions.Chunking(p);
            var spec = methodOptions.Spec(p, chunked: !chunking.IsNone);
            using var session = new Session(new LlamaModel(weights), spec, chunking);
            bool asJson = p.GetValue(json);
            if (!asJson && prompt.Length >= 2048)
                session.Progress = (done, total) => Console.Error.Write($"\r  {done}/{total} tokens");
            var result = session.Run(prompt, genTokens);
            if (!asJson && prompt.Length >= 2048) Console.Error.WriteLine();
            if (p.GetValue(timeline) is { } csv) AtomicFile.WriteAllText(csv, Reports.TableExtensions.ToTable(session.Meter.Steps).ToCsv());
            if (asJson) Cli.WriteJson(result);
            else
            {
                Console.WriteLine($"method          {result.Method}{(result.Schedule is { } s ? $" ({s})" : "")}");
                Console.WriteLine($"prompt / gen    {result.PromptTokens} / {result.GenTokens} tokens, chunk {result.ChunkSize}");
                Console.WriteLine($"generated       {string.Join(' ', result.Generated)}");
                string bits = result.EntryBits != 16 * result.Entries ? ", weighted by bits" : "";
                Console.WriteLine($"footprint       {result.Footprint * 100:F2} %  ({result.Entries} of {result.FullEntries} entries{bits}, {result.StoredHeads} stored heads)");
                Console.WriteLine($"peak KV         {result.PeakKv * 100:F2} %  ({result.PeakEntries} entries while attending, summed over heads)");
                Console.WriteLine($"peak held       {result.PeakHeldEntries} entries at once (all layers and heads)");
                Console.WriteLine($"peak KV bytes   {result.PeakKvBytes:N0}  (what the cache really held: fp32 pages{(result.PeakTransientBytes > 0 ? " + codes, scales, zero-points" : "")})");
                if (result.PeakTransientBytes > 0)
                    Console.WriteLine($"transient bytes {result.PeakTransientBytes:N0}  (dequantized view of one KV head while it attends)");
                if (result.PatchRows > 0)
                    Console.WriteLine($"patch rows      {result.PatchRows}  (prompt tail appended to non-final chunks; not counted in T)");
                Console.WriteLine($"time            pre-fill {result.PrefillSeconds:F3} s, decode {result.DecodeSeconds:F3} s");
            }
            return 0;
        }));
        return cmd;
    }
}
