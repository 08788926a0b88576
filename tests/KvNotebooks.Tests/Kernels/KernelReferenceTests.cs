using KvNotebooks.Cache;
using KvNotebooks.Kernels;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Kernels;

/// <summary>Each kernel against a naive loop in double precision.</summary>
public class KernelReferenceTests
{
    private static float[] Rand(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static void Close(double expected, float actual, double scale, string what) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-4 * Math.Max(1, scale), $"{what}: expected {expected:G7}, got {actual:G7}");

    public static TheoryData<int, int, int> Sizes() => new() { { 1, 1, 1 }, { 1, 33, 17 }, { 2, 7, 3 }, { 7, 65, 130 }, { 17, 2, 257 }, { 33, 130, 65 }, { 130, 17, 7 }, { 50, 70, 600 } };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void GemmVariantsMatchNaiveLoops(int m, int n, int k)
    {
        var a = Rand(m * k, 1); var b = Rand(n * k, 2); var bNN = Rand(k * n, 3); var aT = Rand(k * m, 4);
        foreach (var (threads, portable) in new[] { (1, false), (2, false), (1, true), (2, true) })
        {
            using (new ComputeContext(threads, portable).Enter())
            {
                foreach (bool acc in new[] { false, true })
                {
                    var init = Rand(m * n, 5);
                    var nt = (float[])init.Clone(); var nn = (float[])init.Clone(); var tn = (float[])init.Clone();
                    Gemm.MatMulNT(a, b, nt, m, n, k, acc);
                    Gemm.MatMulNN(a, bNN, nn, m, n, k, acc);
                    Gemm.MatMulTN(aT, bNN, tn, m, n, k, acc);
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                        {
                            double sNT = acc ? init[i * n + j] : 0, sNN = sNT, sTN = sNT;
                            for (int p = 0; p < k; p++)
                            {
                                sNT += (double)a[i * k + p] * b[j * k + p];
                                sNN += (double)a[i * k + p] * bNN[p * n + j];
                                sTN += (double)aT[p * m + i] * bNN[p * n + j];
                            }
                            string at = $"[{i},{j}] m={m} n={n} k={k} threads={threads} acc={acc} portable={portable}";
                            Close(sNT, nt[i * n + j], Math.Sqrt(k), "NT" + at);
                            Close(sNN, nn[i * n + j], Math.Sqrt(k), "NN" + at);
                            Close(sTN, tn[i * n + j], Math.Sqrt(k), "TN" + at);
                        }
                }
            }
        }
    }

    [Theory]
    [InlineData(1, 0, 8, 4, 2, 3)]     // decode: one row, GQA
    [InlineData(9, 0, 16, 2, 2, 4)]    // a fresh chunk, no prefix
    [InlineData(13, 21, 32, 8, 2, 5)]  // a chunk after 21 kept entries, page size not dividing counts
    [InlineData(5, 70, 64, 4, 4, 64)]
    [InlineData(150, 37, 32, 4, 2, 64)] // ≥ 128 rows: the pre-fill path (64-row blocks through the GEMM kernel)
    [InlineData(130, 0, 16, 2, 1, 7)]   // … with pages of 7 entries and MQA
    public void AttentionMatchesNaiveSoftmax(int rows, int prefix, int hd, int heads, int kvHeads, int pageSize)
    {
        var cache = new KvCache(1, kvHeads, hd, pageSize);
        int total = prefix + rows;
        var keys = Rand(total * kvHeads * hd, 6); var values = Rand(total * kvHeads * hd, 7);
        var positions = Enumerable.Range(0, total).ToArray();
        for (int g = 0; g < kvHeads; g++) cache[0, g].Append(keys, values, g * hd, kvHeads * hd, positions);
        var q = Rand(rows * heads * hd, 8).Select(x => x * 3).ToArray();
        var o = new float[rows * heads * hd];
        float scale = 1f / MathF.Sqrt(hd);
        foreach (int threads in new[] { 1, 2 })
        {
            using (new ComputeContext(threads).Enter()) Attention.Layer(q, rows, heads, cache.Layer(0), scale, o);
            int group = heads / kvHeads;
            for (int i = 0; i < rows; i++)
                for (int h = 0; h < heads; h++)
                {
                    int g = h / group, visible = prefix + i + 1;
                    var s = new double[visible];
                    for (int j = 0; j < visible; j++)
                        for (int d = 0; d < hd; d++) s[j] += (double)q[(i * heads + h) * hd + d] * keys[(j * kvHeads + g) * hd + d] * scale;
                    double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
                    for (int d = 0; d < hd; d++)
                    {
                        double expected = 0;
                        for (int j = 0; j < visible; j++) expected += Math.Exp(s[j] - max) / sum * values[(j * kvHeads + g) * hd + d];
                        Close(expected, o[(i * heads + h) * hd + d], 1, $"row {i} head {h} dim {d} threads {threads}");
                    }
                }
        }
    }

    [Fact]
    public void RmsNormSwiGluAndRopeMatchTheirFormulas()
    {
        int d = 37, rows = 3;
        var x = Rand(rows * d, 9); var w = Rand(d, 10); var y = new float[rows * d];
        RmsNorm.Forward(x, w, y, rows, 1e-5f);
        for (int r = 0; r < rows; r++)
        {
            double ms = Enumerable.Range(0, d).Sum(i => (double)x[r * d + i] * x[r * d + i]) / d;
            for (int i = 0; i < d; i++) Close(x[r * d + i] / Math.Sqrt(ms + 1e-5) * w[i], y[r * d + i], 1, $"rmsnorm {r},{i}");
        }
        var g = Rand(50, 11); var u = Rand(50, 12); var h = new float[50];
        SwiGlu.Forward(g, u, h);
        for (int i = 0; i < 50; i++) Close(g[i] / (1 + Math.Exp(-g[i])) * u[i], h[i], 1, $"swiglu {i}");

        int hd = 8;
        var rope = new Rope(hd, 10000);
        var v = Rand(2 * hd, 13); var rotated = (float[])v.Clone();
        rope.Apply(rotated, hd, 1, [0, 1000]);
        Assert.Equal(v.AsSpan(0, hd).ToArray(), rotated.AsSpan(0, hd).ToArray()); // position 0: identity
        for (int i = 0; i < hd / 2; i++)
        {
            double f = Math.Pow(10000, -2.0 * i / hd), c = Math.Cos(1000 * f), s = Math.Sin(1000 * f);
            Close(v[hd + i] * c - v[hd + i + hd / 2] * s, rotated[hd + i], 1, $"rope {i}");
            Close(v[hd + i + hd / 2] * c + v[hd + i] * s, rotated[hd + i + hd / 2], 1, $"rope {i + hd / 2}");
        }
    }

    [Fact]
    public void Llama3ScalingFollowsTransformersRule()
    {
        // head_dim 8, theta 10000: base frequencies 1, 0.1, 0.01, 0.001 (wavelengths 6.3, 63, 628, 6283).
        // factor 8, low 1, high 4, original 16: high wavelength 4 (keep below), low wavelength 16 (divide above).
        var inv = Rope.InverseFrequencies(8, 10000, new RopeScaling("llama3", 8, 1, 4, 16));
        double smooth = (16 / (2 * Math.PI) - 1) / (4 - 1);  // 6.28 lies between 4 and 16: smoothed
        Assert.Equal((1 - smooth) * 1.0 / 8 + smooth * 1.0, inv[0], 5);
        Assert.Equal(0.1 / 8, inv[1], 6);       // 62.8 > 16: divided by the factor
        Assert.Equal(0.001 / 8, inv[3], 7);
    }
}
