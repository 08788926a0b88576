using System.CommandLine;
using KvNotebooks.Footprint;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb footprint</c>: the paper's analytic footprint and peak KV (PAPER.md §1.2).</summary>
public static class FootprintCommand
{
    public static Command Create()
    {
        var method = new Option<string>("--method") { Description = string.Join(" | ", KvFootprint.Methods), Required = true };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length n", Required = true };
        var gen = new Option<int>("--gen-tokens") { Description = "Generated tokens m", DefaultValueFactory = _ => 0 };
        var chunk = new Option<int>("--chunk") { Description = "Pre-fill chunk size C (≥ n: single pre-fill)", DefaultValueFactory = _ => 32768 };
        var h = new Option<double>("--head-sparsity") { Description = "duo/prulong: fraction of streaming heads h", DefaultValueFactory = _ => 0.5 };
        var p = new Option<double>("--evict") { Description = "snapkv/pyramidkv/locret: fraction p evicted per chunk", DefaultValueFactory = _ => 0.5 };
        var sink = new Option<int>("--sink") { Description = "Streaming heads: sink tokens", DefaultValueFactory = _ => 128 };
        var window = new Option<int>("--window") { Description = "Streaming heads: local window", DefaultValueFactory = _ => 1024 };
        var stab = new Option<int>("--stabilizers") { Description = "locret: stabilizers kept per chunk", DefaultValueFactory = _ => 2500 };
        var local = new Option<int>("--local-len") { Description = "locret: last prompt tokens pre-filled alone", DefaultValueFactory = _ => 100 };
        var patch = new Option<int>("--patch-window") { Description = "snapkv/pyramidkv: always-kept window / patch per chunk", DefaultValueFactory = _ => 64 };
        var json = Cli.JsonOption();
        var cmd = new Command("footprint", "KV footprint and peak KV of a method, by the paper's formulas")
            { method, prompt, gen, chunk, h, p, sink, window, stab, local, patch, json };
        cmd.SetAction(r => Cli.Run(() =>
        {
            var q = new FootprintQuery(r.GetValue(method)!, r.GetValue(prompt), r.GetValue(gen), r.GetValue(chunk),
                r.GetValue(h), r.GetValue(p), r.GetValue(sink), r.GetValue(window), r.GetValue(stab), r.GetValue(local), r.GetValue(patch));
            var result = KvFootprint.ForMethod(q);
            if (r.GetValue(json)) Cli.WriteJson(new { query = q, footprint = result.Footprint, peakKv = result.PeakKv, result.FootprintPercent, result.PeakKvPercent });
            else
            {
                string setting = q.Method.ToLowerInvariant() switch
                {
                    "duo" or "duoattention" or "prulong" => $"head sparsity {q.HeadSparsity}, sink {q.Sink}, window {q.Window}",
                    "streaming" => $"sink {q.Sink}, window {q.Window}",
                    "snapkv" or "pyramidkv" => $"evict {q.Evict} per chunk, window {q.PatchWindow}",
                    "locret" => $"sparsity {q.Evict}, stabilizers {q.Stabilizers}, local {q.LocalLen}",
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
