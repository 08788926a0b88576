using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

/// <summary>The vectorised, row-parallel inference ops (RoPE from position tables, fused SwiGLU rows, RMSNorm)
/// against their scalar formulas, on 1 and 2 threads.</summary>
public class InferenceOpsTests
{
    private static float[] Rand(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
    }

    private static void WithThreads(int threads, Action body)
    {
        using var scope = new ComputeContext(threads).Enter();
        body();
    }

    /// <summary>The rotation exactly as the scalar loop did it before the tables: angles per call, fp32.</summary>
    private static void ScalarRope(float[] x, int stride, int heads, int hd, int[] positions, ReadOnlySpan<float> invFreq)
    {
        int half = hd / 2;
        for (int r = 0; r < positions.Length; r++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++)
                {
                    float angle = positions[r] * invFreq[i];
                    float c = MathF.Cos(angle), s = MathF.Sin(angle);
                    int o = r * stride + h * hd;
                    float a = x[o + i], b = x[o + i + half];
                    x[o + i] = a * c - b * s;
                    x[o + i + half] = b * c + a * s;
                }
    }

    [Theory]
    [InlineData(32, 3, 700)]     // Vector512 halves
    [InlineData(16, 2, 300)]     // Vector256 halves
    [InlineData(12, 1, 50)]      // scalar tail
    [InlineData(128, 2, 80)]
    public void RopeFromTablesIsBitwiseTheScalarRotation(int hd, int heads, int rows)
    {
        int stride = heads * hd + 5;
        var rng = new Random(hd);
        // positions out of order, repeated, and past the table cap (rotated on the spot)
        var positions = Enumerable.Range(0, rows).Select(_ => rng.Next(5000)).ToArray();
        positions[0] = 0;
        positions[^1] = 123_456;
        foreach (int threads in new[] { 1, 2 })
        {
            var rope = new Rope(hd, 10000) { MaxTabled = 4096 };
            var x = Rand(rows * stride, 1);
            var expected = (float[])x.Clone();
            ScalarRope(expected, stride, heads, hd, positions, rope.InvFreq);
            WithThreads(threads, () => rope.Apply(x, stride, heads, positions));
            Assert.Equal(expected, x);
            // a second call reuses the tables
            var again = Rand(rows * stride, 2);
            var expectedAgain = (float[])again.Clone();
            ScalarRope(expectedAgain, stride, heads, hd, positions, rope.InvFreq);
            WithThreads(threads, () => rope.Apply(again, stride, heads, positions));
            Assert.Equal(expectedAgain, again);
        }
    }

    [Theory]
    [InlineData(688, 300)]
    [InlineData(37, 5)]      // tail only partly vectorised
    public void SwiGluRowsMatchTheFormula(int ff, int rows)
    {
        var gu = Rand(rows * 2 * ff, 3, 8f);
        gu[0] = 200f; gu[1] = -200f; gu[2] = 0f; gu[3] = float.PositiveInfinity; gu[4] = -1e30f;   // saturated gates
        foreach (int threads in new[] { 1, 2 })
        {
            var h = new float[rows * ff];
            WithThreads(threads, () => SwiGlu.Rows(gu, h, rows, ff));
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < ff; i++)
                {
                    double g = gu[r * 2 * ff + i], u = gu[r * 2 * ff + ff + i];
                    double expected = double.IsPositiveInfinity(g) ? double.PositiveInfinity * Math.Sign(u) : g / (1 + Math.Exp(-g)) * u;
                    float got = h[r * ff + i];
                    if (double.IsInfinity(expected)) Assert.Equal(expected, got);
                    else Assert.True(Math.Abs(expected - got) <= 1e-6 * Math.Max(1, Math.Abs(expected)), $"row {r} col {i}: g={g} u={u} expected {expected:G9}, got {got:G9}");
                }
        }
    }

    [Fact]
    public void RmsNormIsTheSameOnOneAndTwoThreads()
    {
        int d = 256, rows = 333;
        var x = Rand(rows * d, 4); var w = Rand(d, 5);
        var one = new float[rows * d]; var two = new float[rows * d];
        WithThreads(1, () => RmsNorm.Forward(x, w, one, rows, 1e-5f));
        WithThreads(2, () => RmsNorm.Forward(x, w, two, rows, 1e-5f));
        Assert.Equal(one, two);
        for (int r = 0; r < rows; r += 37)
        {
            double ms = Enumerable.Range(0, d).Sum(i => (double)x[r * d + i] * x[r * d + i]) / d;
            for (int i = 0; i < d; i++)
                Assert.True(Math.Abs(x[r * d + i] / Math.Sqrt(ms + 1e-5) * w[i] - one[r * d + i]) <= 1e-5, $"rmsnorm {r},{i}");
        }
    }
}
