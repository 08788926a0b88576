using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace KvNotebooks.Bench;

/// <summary>
/// This machine's fp32 fused multiply-add peak, measured: each thread runs independent FMA chains on
/// the widest vectors the CPU accelerates (Vector512 → Vector256 → Vector128), enough of them to hide
/// the FMA latency. Benchmarks report their speed as a fraction of this number.
/// </summary>
public static class PeakFlops
{
    /// <summary>GFLOP/s on <paramref name="threads"/> threads (best of a few runs, 2 FLOPs per lane per FMA).</summary>
    public static double Measure(int threads, int iterations = 20_000_000 / 16)
    {
        double best = 0;
        for (int rep = 0; rep < 3; rep++)
        {
            var sw = Stopwatch.StartNew();
            double lanesTimesFmas = 0;
            var tasks = Enumerable.Range(0, threads).Select(_ => Task.Factory.StartNew(() => Kernel(iterations), TaskCreationOptions.LongRunning)).ToArray();
            Task.WaitAll(tasks);
            foreach (var t in tasks) lanesTimesFmas += t.Result;
            best = Math.Max(best, 2 * lanesTimesFmas / sw.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    /// <summary>Runs 12 independent FMA chains; returns lanes × FMAs done.</summary>
    private static double Kernel(int iterations)
    {
        if (Vector512.IsHardwareAccelerated) return Run<Vector512<float>>(iterations, Vector512<float>.Count);
        if (Vector256.IsHardwareAccelerated) return Run<Vector256<float>>(iterations, Vector256<float>.Count);
        return Run<Vector128<float>>(iterations, Vector128<float>.Count);
    }

    private static double Run<TV>(int iterations, int lanes) where TV : unmanaged
    {
        // Generic math over vectors is awkward; specialise by width.
        if (typeof(TV) == typeof(Vector512<float>))
        {
            var m = Vector512.Create(0.9999f); var a = Vector512.Create(1e-7f);
            Vector512<float> x0 = Vector512.Create(1f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
            for (int i = 0; i < iterations; i++)
            {
                x0 = Vector512.FusedMultiplyAdd(x0, m, a); x1 = Vector512.FusedMultiplyAdd(x1, m, a); x2 = Vector512.FusedMultiplyAdd(x2, m, a);
                x3 = Vector512.FusedMultiplyAdd(x3, m, a); x4 = Vector512.FusedMultiplyAdd(x4, m, a); x5 = Vector512.FusedMultiplyAdd(x5, m, a);
                x6 = Vector512.FusedMultiplyAdd(x6, m, a); x7 = Vector512.FusedMultiplyAdd(x7, m, a); x8 = Vector512.FusedMultiplyAdd(x8, m, a);
                x9 = Vector512.FusedMultiplyAdd(x9, m, a); x10 = Vector512.FusedMultiplyAdd(x10, m, a); x11 = Vector512.FusedMultiplyAdd(x11, m, a);
            }
            Sink = Vector512.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
        }
        else if (typeof(TV) == typeof(Vector256<float>))
        {
            var m = Vector256.Create(0.9999f); var a = Vector256.Create(1e-7f);
            Vector256<float> x0 = Vector256.Create(1f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
            for (int i = 0; i < iterations; i++)
            {
                x0 = Vector256.FusedMultiplyAdd(x0, m, a); x1 = Vector256.FusedMultiplyAdd(x1, m, a); x2 = Vector256.FusedMultiplyAdd(x2, m, a);
                x3 = Vector256.FusedMultiplyAdd(x3, m, a); x4 = Vector256.FusedMultiplyAdd(x4, m, a); x5 = Vector256.FusedMultiplyAdd(x5, m, a);
                x6 = Vector256.FusedMultiplyAdd(x6, m, a); x7 = Vector256.FusedMultiplyAdd(x7, m, a); x8 = Vector256.FusedMultiplyAdd(x8, m, a);
                x9 = Vector256.FusedMultiplyAdd(x9, m, a); x10 = Vector256.FusedMultiplyAdd(x10, m, a); x11 = Vector256.FusedMultiplyAdd(x11, m, a);
            }
            Sink = Vector256.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11);
        }
        else
        {
            var m = Vector128.Create(0.9999f); var a = Vector128.Create(1e-7f);
            Vector128<float> x0 = Vector128.Create(1f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0;
            for (int i = 0; i < iterations; i++)
            {
                x0 = Vector128.FusedMultiplyAdd(x0, m, a); x1 = Vector128.FusedMultiplyAdd(x1, m, a); x2 = Vector128.FusedMultiplyAdd(x2, m, a);
                x3 = Vector128.FusedMultiplyAdd(x3, m, a); x4 = Vector128.FusedMultiplyAdd(x4, m, a); x5 = Vector128.FusedMultiplyAdd(x5, m, a);
                x6 = Vector128.FusedMultiplyAdd(x6, m, a); x7 = Vector128.FusedMultiplyAdd(x7, m, a);
            }
            Sink = Vector128.Sum(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7);
            return (double)iterations * 8 * lanes;
        }
        return (double)iterations * 12 * lanes;
    }

    private static float Sink;
}
