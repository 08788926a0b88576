using System.CommandLine;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb footprint</c>: the analytic footprint and peak KV of any method of the registry, by the paper's
/// accounting (docs/footprint.md). A token scorer is counted with the accounting rule, round((1 − p)·c) + window per
/// chunk, the default everywhere (<c>--budget-rule code</c>: the paper code's int((1 − p)·c)); with a schedule option it
/// is counted as the engine runs that schedule.</summary>
public static class FootprintCommand
{
    public static Command Create(MethodRegistry registry)
    {
        var methodOptions = new MethodOptions(registry, defaultMethod: "");
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length n", Required = true };
        var gen = new Option<int>("--gen-tokens") { Description = "Generated tokens m", DefaultValueFactory = _ => 0 };
        var chunk = new Option<int>("--chunk") { Description = "Pre-fill chunk size C (≥ n: single pre-fill)", DefaultValueFactory = _ => 32768 };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "duo/prulong: the model's (layer, KV head) count, to count round(s·heads) whole streaming heads as the engine does (default: the paper's fraction s)" };
        var json = Cli.JsonOption();
        var cmd = new Command("footprint", "KV footprint and peak KV of a method, by the paper's formulas (or, with a schedule option, as the engine runs it)")
            { prompt, gen, chunk, kvHeads, json };
        methodOptions.AddTo(cmd, withChunk: false);
        cmd.SetAction(r => Cli.Run(() =>
        {
            int n = r.GetValue(prompt), m = r.GetValue(gen), c = r.GetValue(chunk);
            if (n < 1) throw new ArgumentException($"--prompt-tokens must be ≥ 1 (got {n})");
            if (m < 0) throw new ArgumentException($"--gen-tokens must be ≥ 0 (got {m})");
            if (c < 1) throw new ArgumentException($"--chunk must be ≥ 1 (got {c})");
            if (r.GetValue(kvHeads) is < 1) throw new ArgumentException("--kv-heads must be ≥ 1");
            var s = methodOptions.Schedule;
            bool asRun = ScheduleOptions.Given(r, s.Schedule) || ScheduleOptions.Given(r, s.Budget) || ScheduleOptions.Given(r, s.BudgetRule);
            var chunking = c >= n ? Chunking.None : Chunking.Of(c);
            var spec = methodOptions.Spec(r, chunked: !chunking.IsNone);
            var shape = new FootprintShape(n, m, chunking, r.GetValue(kvHeads));
            var result = spec.Footprint(shape);
            string config = spec.Describe(chunking);
            if (r.GetValue(json))
                Cli.WriteJson(new
                {
                    method = spec.Name, config, promptTokens = n, genTokens = m, chunk = chunking.EffectiveSize(n),
                    schedule = spec.ScheduleOrDefault?.ToString(), footprint = result.Footprint, peakKv = result.PeakKv,
                    result.FootprintPercent, result.PeakKvPercent,
                });
            else
            {
                Console.WriteLine($"method      {config}");
                Console.WriteLine($"sequence    {n} prompt + {m} generated, chunk {chunking.EffectiveSize(n)}");
                if (spec.ScheduleOrDefault is { } sc) Console.WriteLine($"schedule    {sc}{(asRun ? " (as the engine runs it)" : " (the paper's formula)")}");
                if (spec.EffectiveStorage.Quantization is not null) Console.WriteLine("            (footprint in bits: a b-bit entry counts b/16)");
                Console.WriteLine($"footprint   {result.FootprintPercent:F2} %");
                Console.WriteLine($"peak KV     {result.PeakKvPercent:F2} %");
            }
            return 0;
        }));
        return cmd;
    }
}
