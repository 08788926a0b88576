using System.CommandLine;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb footprint</c>: the paper's analytic footprint and peak KV (PAPER.md §1.2); with
/// <c>--schedule</c>, score-based methods counted exactly as the engine runs them.</summary>
public static class FootprintCommand
{
    public static Command Create()
    {
        var method = new Option<string>("--method") { Description = string.Join(" | ", KvFootprint.Methods), Required = true };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length n", Required = true };
        var gen = new Option<int>("--gen-tokens") { Description = "Generated tokens m", DefaultValueFactory = _ => 0 };
        var chunk = new Option<int>("--chunk") { Description = "Pre-fill chunk size C (≥ n: single pre-fill)", DefaultValueFactory = _ => 32768 };
        var h = new Option<double>("--head-sparsity") { Description = "duo/prulong: fraction of streaming heads h", DefaultValueFactory = _ => 0.5 };
        var sink = new Option<int>("--sink") { Description = "Streaming heads: sink tokens", DefaultValueFactory = _ => 128 };
        var window = new Option<int>("--window") { Description = "Streaming heads: local window", DefaultValueFactory = _ => 1024 };
        var stab = new Option<int>("--stabilizers") { Description = "locret: stabilizers kept per chunk", DefaultValueFactory = _ => 2500 };
        var local = new Option<int>("--local-len") { Description = "locret: last prompt tokens pre-filled alone", DefaultValueFactory = _ => 100 };
        var schedule = new ScheduleOptions();
        var quant = new QuantOptions();
        var json = Cli.JsonOption();
        var cmd = new Command("footprint", "KV footprint and peak KV of a method, by the paper's formulas (or, with --schedule, as the engine runs it)")
            { method, prompt, gen, chunk, h, sink, window, stab, local, json };
        foreach (var o in schedule.All) cmd.Options.Add(o);
        foreach (var o in quant.All) cmd.Options.Add(o);
        cmd.SetAction(r => Cli.Run(() =>
        {
            string name = r.GetValue(method)!.ToLowerInvariant();
            bool scored = MethodFactory.ScoredNames.Contains(name);
            if (ScheduleOptions.Given(r, schedule.Budget) && !scored)
                throw new ArgumentException($"--budget applies to the score-based methods ({string.Join(", ", MethodFactory.ScoredNames)}), not '{name}'");
            if (ScheduleOptions.Given(r, schedule.Schedule) && !scored)
                throw new ArgumentException($"--schedule applies to the score-based methods ({string.Join(", ", MethodFactory.ScoredNames)}), not '{name}'");
            if (quant.AnyGiven(r) && name is not ("quantized" or "kivi"))
                throw new ArgumentException($"--bits, --group-size and --residual apply to --method quantized, not '{name}'");
            double p = schedule.EvictFraction(r);
            if (!(p >= 0 && p < 1)) throw new ArgumentException($"--evict must be a fraction p in [0, 1) (got {p})");
            bool asRun = scored && (ScheduleOptions.Given(r, schedule.Schedule) || ScheduleOptions.Given(r, schedule.Budget)
                                    || ScheduleOptions.Given(r, schedule.BudgetRule));
            var q = new FootprintQuery(name, r.GetValue(prompt), r.GetValue(gen), r.GetValue(chunk),
                r.GetValue(h), p, r.GetValue(sink), r.GetValue(window), r.GetValue(stab), r.GetValue(local), r.GetValue(schedule.ObsWindow))
            {
                Schedule = asRun ? schedule.Create(r, r.GetValue(chunk) < r.GetValue(prompt)) : null,
                Quantization = name is "quantized" or "kivi" ? quant.Create(r) : null,
            };
            var result = KvFootprint.ForMethod(q);
            if (r.GetValue(json))
                Cli.WriteJson(new
                {
                    query = q, schedule = q.Schedule?.ToString(), footprint = result.Footprint, peakKv = result.PeakKv,
                    result.FootprintPercent, result.PeakKvPercent,
                });
            else
            {
                string setting = q.Method switch
                {
                    "duo" or "duoattention" or "prulong" => $"head sparsity {q.HeadSparsity}, sink {q.Sink}, window {q.Window}",
                    "streaming" => $"sink {q.Sink}, window {q.Window}",
                    _ when q.Schedule is { } s => $"as run: {s}",
                    "snapkv" or "pyramidkv" or "h2o" or "l2" or "zigzag" => $"evict {q.Evict} per chunk, window {q.PatchWindow} (paper formula)",
                    "locret" => $"sparsity {q.Evict}, stabilizers {q.Stabilizers}, local {q.LocalLen}",
                    "quantized" or "kivi" => $"{q.Quantization!.Bits} bits, group {q.Quantization.GroupSize}, residual {q.Quantization.Residual} (footprint in bits)",
                    _ => "",
                };
                Console.WriteLine($"method      {q.Method} {setting}");
                Console.WriteLine($"sequence    {q.PromptTokens} prompt + {q.GenTokens} generated, chunk {Math.Min(q.ChunkSize, q.PromptTokens)}");
                Console.WriteLine($"footprint   {result.FootprintPercent:F2} %");
                Console.WriteLine($"peak KV     {result.PeakKvPercent:F2} %");
            }
            return 0;
        }));
        return cmd;
    }
}
