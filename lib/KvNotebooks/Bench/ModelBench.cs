using System.Diagnostics;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Kernels;
using KvNotebooks.Model;

namespace KvNotebooks.Bench;

/// <summary>Throughput of a whole forward pass: tokens/s, and GFLOP/s against the FMA peak measured
/// in the same run.</summary>
public sealed record ModelBenchResult(
    string Kind, int ContextTokens, int TimedTokens, int Threads, double Seconds,
    double TokensPerSecond, double Gflops, double PeakGflops, double FractionOfPeak)
{
    /// <summary>Seconds per run spent in each op of the forward pass (all layers together; the least
    /// over the timed runs), when asked for; "session" is what the session does around the forward pass.</summary>
    public IReadOnlyList<TrainBenchOp>? Breakdown { get; init; }
}

/// <summary>Pre-fill and decode benchmarks on a random model (default: the 4-layer model,
/// d_model 256, 8 heads of 32, SwiGLU 688, vocab 512).</summary>
public static class ModelBench
{
    public static LlamaConfig DefaultConfig(int kvHeads = 8) => new()
    {
        VocabSize = 512, HiddenSize = 256, IntermediateSize = 688, NumLayers = 4,
        NumHeads = 8, NumKvHeads = kvHeads, HeadDim = 32, RopeTheta = 10000, MaxPositionEmbeddings = 1 << 20,
    };

    /// <summary>FLOPs of the matrix products for one token (2 per multiply-add), attention excluded.</summary>
    public static double LinearFlopsPerToken(LlamaConfig c) =>
        2.0 * (c.NumLayers * ((double)c.HiddenSize * (c.QDim + 2 * c.KvDim) + (double)c.QDim * c.HiddenSize
                              + 3.0 * c.HiddenSize * c.IntermediateSize) + (double)c.HiddenSize * c.VocabSize);

    /// <summary>Attention FLOPs for <paramref name="pairs"/> visible (query, key) pairs per head: 4·headDim each.</summary>
    public static double AttentionFlops(LlamaConfig c, double pairs) => 4.0 * c.HeadDim * c.NumHeads * c.NumLayers * pairs;

    /// <summary>Single pre-fill of <paramref name="tokens"/> tokens, best of <paramref name="repeats"/> after a warm-up.
    /// With <paramref name="breakdown"/>, each op's time is recorded too (on one thread by the thread's CPU
    /// time, which other processes do not disturb; on more by wall time).</summary>
    public static ModelBenchResult Prefill(LlamaWeights weights, int tokens, int threads, int repeats = 3, bool breakdown = false)
    {
        var model = new LlamaModel(weights, new ComputeContext(threads));
        var prompt = RandomTokens(tokens, weights.Config.VocabSize);
        double best = double.MaxValue;
        var timer = breakdown ? new StepTimer(threads == 1 && ThreadClock.Available ? ThreadClock.Seconds : null) : null;
        double peak = PeakFlops.Measure(threads);
        WithThreads(threads, () =>
        {
            for (int r = 0; r <= repeats; r++)
            {
                using var session = new Session(model, new FullAttention());
                model.Timer = r > 0 ? timer : null;
                var sw = Stopwatch.StartNew();
                session.Prefill(prompt);
                if (r > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                if (r > 0) timer?.EndStep();
            }
        });
        model.Timer = null;
        var c = weights.Config;
        double flops = LinearFlopsPerToken(c) * tokens - 2.0 * c.HiddenSize * c.VocabSize * (tokens - 1)
                       + AttentionFlops(c, tokens * (tokens + 1.0) / 2);
        return Result("prefill", tokens, tokens, threads, best, flops, peak) with
        {
            Breakdown = timer?.Totals.Select(t => new TrainBenchOp(t.Op, t.Seconds)).ToList(),
        };
    }

    /// <summary>Greedy decode of <paramref name="steps"/> tokens after a pre-fill of <paramref name="context"/>
    /// (with <paramref name="breakdown"/>, seconds per op summed over the steps, as for <see cref="Prefill"/>).</summary>
    public static ModelBenchResult Decode(LlamaWeights weights, int context, int steps, int threads, bool breakdown = false)
    {
        var timer = breakdown ? new StepTimer(threads == 1 && ThreadClock.Available ? ThreadClock.Seconds : null) : null;
        var model = new LlamaModel(weights, new ComputeContext(threads));
        var prompt = RandomTokens(context, weights.Config.VocabSize);
        double seconds = 0;
        WithThreads(threads, () =>
        {
            // Steady state: decode for about a second first, so the JIT has tiered the per-token
            // path up to optimised code (the first calls run unoptimised, ~6× slower here).
            using var warm = new Session(model, new FullAttention());
            warm.Prefill(prompt[..Math.Min(context, 64)]);
            var warmClock = Stopwatch.StartNew();
            for (int i = 0; warmClock.Elapsed.TotalSeconds < 1.0 && i < 4000; i++) warm.Decode(i % weights.Config.VocabSize);
            using var session = new Session(model, new FullAttention());
            session.Prefill(prompt);
            model.Timer = timer;
            var sw = Stopwatch.StartNew();
            session.Generate(steps);
            seconds = sw.Elapsed.TotalSeconds;
            model.Timer = null;
            timer?.EndStep();
        });
        var c = weights.Config;
        double pairs = steps * (double)context + steps * (steps + 1.0) / 2;
        double flops = LinearFlopsPerToken(c) * steps + AttentionFlops(c, pairs);
        return Result("decode", context, steps, threads, seconds, flops) with
        {
            Breakdown = timer?.Totals.Select(t => new TrainBenchOp(t.Op, t.Seconds)).ToList(),
        };
    }

    private static ModelBenchResult Result(string kind, int context, int timed, int threads, double seconds, double flops, double peakBefore = 0)
    {
        // the higher of a measurement before and after: on a shared machine one can land while another process holds a core
        double peak = Math.Max(peakBefore, PeakFlops.Measure(threads));
        double gflops = flops / seconds / 1e9;
        return new ModelBenchResult(kind, context, timed, threads, seconds, timed / seconds, gflops, peak, gflops / peak);
    }

    /// <summary>Runs <paramref name="action"/> with <paramref name="threads"/> kernel threads (the model's own passes
    /// run with its context; this covers what the bench calls outside them).</summary>
    private static void WithThreads(int threads, Action action)
    {
        using var scope = new ComputeContext(threads).Enter();
        action();
    }

    /// <summary>The benchmarks' prompt: <paramref name="n"/> tokens drawn from a fixed seed.</summary>
    internal static int[] RandomTokens(int n, int vocab)
    {
        var rng = new Random(1234);
        return Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
    }
}
