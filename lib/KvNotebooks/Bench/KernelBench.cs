using System.Diagnostics;
using KvNotebooks.Cache;
using KvNotebooks.Kernels;

namespace KvNotebooks.Bench;

/// <summary>A kernel's measured speed against this machine's FMA peak on the same threads.</summary>
public sealed record KernelBenchResult(string Kernel, string Shape, int Threads, double Seconds, double Gflops, double PeakGflops, double FractionOfPeak);

/// <summary>GEMM and attention benchmarks (best of several repetitions after a warm-up).</summary>
public static class KernelBench
{
    public static KernelBenchResult Gemm(int m, int n, int k, int threads, int repeats = 5)
    {
        var rng = new Random(1);
        var a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var b = Enumerable.Range(0, n * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var c = new float[m * n];
        double best = Time(threads, repeats, () => Kernels.Gemm.MatMulNT(a, b, c, m, n, k));
        return Result("gemm NT", $"{m}×{k} · ({n}×{k})ᵀ", threads, best, 2.0 * m * n * k);
    }

    /// <summary>The inference GEMM (<see cref="PackedWeight"/>: B packed once, as at model load) the way the forward
    /// pass runs it: rows in tiles of 96, a tile per thread at a time.</summary>
    public static KernelBenchResult PackedGemm(int m, int n, int k, int threads, int repeats = 5)
    {
        var rng = new Random(1);
        var a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var b = Enumerable.Range(0, n * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var c = new float[m * n];
        var w = new PackedWeight(b, n, k);
        const int tile = 96;
        int tiles = (m + tile - 1) / tile;
        double best = Time(threads, repeats, () => ComputeContext.Current.For(tiles, threads > 1, t =>
        {
            int r0 = t * tile, rows = Math.Min(tile, m - r0);
            w.Multiply(a.AsSpan(r0 * k), k, rows, c.AsSpan(r0 * n), n);
        }));
        return Result("gemm packed", $"{m}×{k} · ({n}×{k})ᵀ", threads, best, 2.0 * m * n * k);
    }

    /// <summary>Causal attention of a single pre-fill of <paramref name="tokens"/> tokens for one layer.</summary>
    public static KernelBenchResult Attention(int tokens, int heads, int kvHeads, int headDim, int threads, int repeats = 3)
    {
        var rng = new Random(2);
        var cache = new KvCache(1, kvHeads, headDim);
        var kv = Enumerable.Range(0, tokens * headDim).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var positions = Enumerable.Range(0, tokens).ToArray();
        for (int g = 0; g < kvHeads; g++) cache[0, g].Append(kv, kv, 0, headDim, positions);
        var q = Enumerable.Range(0, tokens * heads * headDim).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var o = new float[q.Length];
        float scale = 1f / MathF.Sqrt(headDim);
        double best = Time(threads, repeats, () => Cache.Attention.Layer(q, tokens, heads, cache.Layer(0), scale, o));
        double pairs = tokens * (tokens + 1.0) / 2;
        return Result("attention", $"{tokens} tokens, {heads} heads ({kvHeads} KV) × {headDim}", threads, best, 4.0 * headDim * heads * pairs);
    }

    private static double Time(int threads, int repeats, Action work)
    {
        using (new ComputeContext(threads).Enter())
        {
            work();
            double best = double.MaxValue;
            for (int r = 0; r < repeats; r++)
            {
                var sw = Stopwatch.StartNew();
                work();
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return best;
        }
    }

    private static KernelBenchResult Result(string kernel, string shape, int threads, double seconds, double flops)
    {
        double peak = PeakFlops.Measure(threads);
        double gflops = flops / seconds / 1e9;
        return new KernelBenchResult(kernel, shape, threads, seconds, gflops, peak, gflops / peak);
    }
}
