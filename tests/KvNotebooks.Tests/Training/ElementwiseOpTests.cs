using KvNotebooks.Kernels;
using KvNotebooks.Training.Ops;
using static KvNotebooks.Tests.Training.GradCheck;

namespace KvNotebooks.Tests.Training;

/// <summary>The vectorised, multi-threaded SwiGLU / RMSNorm / RoPE against naive loops in double, at sizes
/// with vector tails and several thread chunks, on the AVX-512 and the portable path, 1 and 2 threads.
/// (OpGradientTests checks the same ops' gradients by finite differences at tiny sizes.)</summary>
public class ElementwiseOpTests
{
    public static TheoryData<int, bool> Paths() => new() { { 1, false }, { 2, false }, { 1, true }, { 2, true } };

    [Theory]
    [MemberData(nameof(Paths))]
    public void SwiGluMatchesNaive(int threads, bool portable)
    {
        var rng = new Random(1);
        int n = 3 * 16384 + 37;
        var g = Random(rng, n, 6f); var u = Random(rng, n); var dh = Random(rng, n);
        var h = new float[n]; var dg = Random(rng, n); var du = Random(rng, n);
        var dg0 = (float[])dg.Clone(); var du0 = (float[])du.Clone();
        var dgW = new float[n]; var duW = new float[n];
        With(threads, portable, () =>
        {
            SwiGluOp.Forward(g, u, h);
            SwiGluOp.Backward(dh, g, u, dg, du);
            SwiGluOp.Backward(dh, g, u, dgW, duW, accumulate: false);
        });
        for (int i = 0; i < n; i++)
        {
            double sig = 1 / (1 + Math.Exp(-(double)g[i]));
            double eh = g[i] * sig * u[i], edg = dh[i] * u[i] * sig * (1 + g[i] * (1 - sig)), edu = dh[i] * g[i] * sig;
            Near(eh, h[i], $"h[{i}]");
            Near(dg0[i] + edg, dg[i], $"dgate[{i}]"); Near(du0[i] + edu, du[i], $"dup[{i}]");
            Near(edg, dgW[i], $"dgate (overwrite)[{i}]"); Near(edu, duW[i], $"dup (overwrite)[{i}]");
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void RmsNormMatchesNaive(int threads, bool portable)
    {
        foreach (int d in new[] { 256, 40 })
        {
            var rng = new Random(d);
            int rows = 700;
            var x = Random(rng, rows * d, 2f); var w = Random(rng, d, 0.5f); for (int i = 0; i < d; i++) w[i] += 1f;
            var dy = Random(rng, rows * d);
            var y = new float[rows * d]; var rstd = new float[rows];
            var dx = Random(rng, rows * d); var dw = Random(rng, d);
            var dx0 = (float[])dx.Clone(); var dw0 = (float[])dw.Clone();
            With(threads, portable, () =>
            {
                RmsNormOp.Forward(x, w, y, rstd, rows, d, 1e-5f);
                RmsNormOp.Backward(dy, x, w, rstd, dx, dw, rows, d);
            });
            var edw = new double[d];
            for (int r = 0; r < rows; r++)
            {
                double ss = 0, dot = 0;
                for (int i = 0; i < d; i++) ss += (double)x[r * d + i] * x[r * d + i];
                double inv = 1 / Math.Sqrt(ss / d + 1e-5);
                Near(inv, rstd[r], $"rstd[{r}] d={d}");
                for (int i = 0; i < d; i++) dot += (double)w[i] * dy[r * d + i] * x[r * d + i];
                for (int i = 0; i < d; i++)
                {
                    int k = r * d + i;
                    Near(x[k] * inv * w[i], y[k], $"y[{k}] d={d}");
                    Near(dx0[k] + inv * w[i] * dy[k] - x[k] * inv * inv * inv / d * dot, dx[k], $"dx[{k}] d={d}");
                    edw[i] += dy[k] * x[k] * inv;
                }
            }
            for (int i = 0; i < d; i++) Near(dw0[i] + edw[i], dw[i], $"dw[{i}] d={d}", rows);
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void RopeMatchesNaive(int threads, bool portable)
    {
        foreach (int hd in new[] { 32, 64, 6 })
        {
            var rng = new Random(hd);
            int rows = 600, heads = 3, stride = heads * hd + 4, half = hd / 2;
            var pos = Enumerable.Range(0, rows).Select(i => i * 7 % 1000).ToArray();
            var table = new RopeTable(hd, 10000.0, null, pos);
            var x = Random(rng, rows * stride);
            var fwd = (float[])x.Clone(); var bwd = (float[])x.Clone();
            With(threads, portable, () =>
            {
                RopeOp.Forward(fwd, rows, stride, heads, table);
                RopeOp.Backward(bwd, rows, stride, heads, table);
            });
            for (int r = 0; r < rows; r++)
                for (int h = 0; h < heads; h++)
                    for (int i = 0; i < half; i++)
                    {
                        int o = r * stride + h * hd;
                        double c = table.Cos[r * half + i], s = table.Sin[r * half + i], a = x[o + i], b = x[o + i + half];
                        Near(a * c - b * s, fwd[o + i], "rope"); Near(b * c + a * s, fwd[o + i + half], "rope");
                        Near(a * c + b * s, bwd[o + i], "rope back"); Near(b * c - a * s, bwd[o + i + half], "rope back");
                    }
            for (int r = 0; r < rows; r++)   // the padding after the heads is untouched
                for (int j = heads * hd; j < stride; j++) Assert.Equal(x[r * stride + j], fwd[r * stride + j]);
        }
    }

    private static void Near(double expected, float actual, string what, double scale = 1) =>
        Assert.True(Math.Abs(expected - actual) <= 2e-6 * scale + 2e-5 * Math.Abs(expected), $"{what}: {actual} vs {expected}");

    private static void With(int threads, bool portable, Action body)
    {
        using var scope = new ComputeContext(threads, portable).Enter();
        body();
    }
}
