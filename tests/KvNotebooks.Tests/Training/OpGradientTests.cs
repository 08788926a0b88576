using KvNotebooks.Training;
using KvNotebooks.Training.Ops;
using static KvNotebooks.Tests.Training.GradCheck;

namespace KvNotebooks.Tests.Training;

/// <summary>Every op's Backward against central finite differences of its Forward (tiny shapes, fp32).</summary>
public class OpGradientTests
{
    [Fact]
    public void Embedding()
    {
        var rng = new Random(1);
        int V = 7, d = 5; int[] tokens = [3, 1, 3, 6, 0];
        var table = Random(rng, V * d); var w = Random(rng, tokens.Length * d);
        var x = new float[tokens.Length * d];
        double L() { EmbeddingOp.Forward(tokens, table, x, d); return Dot(w, x); }
        var dTable = new float[V * d];
        EmbeddingOp.Backward(tokens, w, dTable, d);
        Check("dTable", table, dTable, L);
    }

    [Fact]
    public void RmsNorm()
    {
        var rng = new Random(2);
        int rows = 3, d = 8;
        var x = Random(rng, rows * d); var g = Random(rng, d, 0.5f); for (int i = 0; i < d; i++) g[i] += 1f;
        var w = Random(rng, rows * d);
        var y = new float[rows * d]; var rstd = new float[rows];
        double L() { RmsNormOp.Forward(x, g, y, rstd, rows, d, 1e-5f); return Dot(w, y); }
        L();
        var dx = new float[rows * d]; var dg = new float[d];
        RmsNormOp.Backward(w, x, g, rstd, dx, dg, rows, d);
        Check("dx", x, dx, L);
        Check("dweight", g, dg, L);
    }

    [Fact]
    public void LinearWithBias()
    {
        var rng = new Random(3);
        int rows = 4, inDim = 6, outDim = 5;
        var x = Random(rng, rows * inDim); var W = Random(rng, outDim * inDim); var b = Random(rng, outDim);
        var w = Random(rng, rows * outDim); var y = new float[rows * outDim];
        double L() { LinearOp.Forward(x, W, b, y, rows, inDim, outDim); return Dot(w, y); }
        var dx = new float[x.Length]; var dW = new float[W.Length]; var db = new float[b.Length];
        LinearOp.Backward(w, x, W, dx, dW, db, rows, inDim, outDim);
        Check("dx", x, dx, L);
        Check("dW", W, dW, L);
        Check("db", b, db, L);
    }

    [Fact]
    public void Rope()
    {
        var rng = new Random(4);
        int rows = 5, heads = 3, hd = 6, stride = heads * hd;
        var table = new RopeTable(hd, 10000.0, null, [0, 1, 2, 7, 30]);
        var x = Random(rng, rows * stride); var w = Random(rng, rows * stride); var y = new float[x.Length];
        double L() { x.CopyTo(y, 0); RopeOp.Forward(y, rows, stride, heads, table); return Dot(w, y); }
        var dx = (float[])w.Clone();
        RopeOp.Backward(dx, rows, stride, heads, table);
        Check("dx", x, dx, L);
    }

    [Fact]
    public void SwiGlu()
    {
        var rng = new Random(5);
        int n = 20;
        var g = Random(rng, n, 3f); var u = Random(rng, n); var w = Random(rng, n); var h = new float[n];
        double L() { SwiGluOp.Forward(g, u, h); return Dot(w, h); }
        var dg = new float[n]; var du = new float[n];
        SwiGluOp.Backward(w, g, u, dg, du);
        Check("dgate", g, dg, L);
        Check("dup", u, du, L);
    }

    [Fact]
    public void CrossEntropyOverChosenPositions()
    {
        var rng = new Random(6);
        int P = 3, V = 9; int[] targets = [4, 0, 8];
        var logits = Random(rng, P * V, 3f); var probs = new float[P * V];
        double L() => CrossEntropyOp.Forward(logits, targets, probs, P, V);
        // value: mean of −log softmax at the targets, by hand in double
        double expected = 0;
        for (int p = 0; p < P; p++)
        {
            double s = 0; for (int v = 0; v < V; v++) s += Math.Exp(logits[p * V + v]);
            expected += Math.Log(s) - logits[p * V + targets[p]];
        }
        Assert.Equal(expected / P, L(), 1e-5);
        var dl = new float[P * V];
        CrossEntropyOp.Backward(probs, targets, dl, P, V);
        Check("dlogits", logits, dl, L);
    }

    public static TheoryData<string> MaskCases => new() { "full", "streaming", "mixed", "blocks" };

    private static KeyVisibility[] Masks(string kind, int heads) => kind switch
    {
        "full" => Enumerable.Repeat(KeyVisibility.Full, heads).ToArray(),
        "streaming" => Enumerable.Repeat(KeyVisibility.Streaming(2, 3), heads).ToArray(),
        "blocks" => Enumerable.Range(0, heads).Select(h => h % 2 == 0 ? KeyVisibility.Streaming(1, 3, 2) : KeyVisibility.Streaming(3, 2, 3)).ToArray(),
        _ => Enumerable.Range(0, heads).Select(h => h % 3 == 1 ? KeyVisibility.Streaming(1, 2) : h % 3 == 2 ? KeyVisibility.Streaming(2, 3) : KeyVisibility.Full).ToArray(),
    };

    /// <summary>Explicit T × T masked softmax attention, in double.</summary>
    private static double[] NaiveAttention(float[] q, float[] k, float[] v, int T, int Hq, int Hkv, int hd, KeyVisibility[] masks)
    {
        var o = new double[T * Hq * hd];
        int group = Hq / Hkv;
        for (int h = 0; h < Hq; h++)
            for (int i = 0; i < T; i++)
            {
                var s = new double[T]; double max = double.NegativeInfinity;
                for (int j = 0; j < T; j++)
                {
                    bool sees = KeyVisibilityTests.BruteSees(masks[h], i, j);
                    if (!sees) { s[j] = double.NegativeInfinity; continue; }
                    double dot = 0;
                    for (int e = 0; e < hd; e++) dot += (double)q[(i * Hq + h) * hd + e] * k[(j * Hkv + h / group) * hd + e];
                    s[j] = dot / Math.Sqrt(hd); max = Math.Max(max, s[j]);
                }
                double z = 0; for (int j = 0; j < T; j++) { s[j] = Math.Exp(s[j] - max); z += s[j]; }
                for (int j = 0; j < T; j++)
                    for (int e = 0; e < hd; e++) o[(i * Hq + h) * hd + e] += s[j] / z * v[(j * Hkv + h / group) * hd + e];
            }
        return o;
    }

    [Theory]
    [MemberData(nameof(MaskCases))]
    public void AttentionGqa(string maskKind)
    {
        var rng = new Random(7);
        int T = 9, Hq = 4, Hkv = 2, hd = 4;
        var masks = Masks(maskKind, Hq);
        var q = Random(rng, T * Hq * hd, 1.5f); var k = Random(rng, T * Hkv * hd, 1.5f); var v = Random(rng, T * Hkv * hd);
        var w = Random(rng, T * Hq * hd);
        var o = new float[q.Length]; var lse = new float[Hq * T];
        double L() { AttentionOp.Forward(q, k, v, o, lse, T, Hq, Hkv, hd, masks); return Dot(w, o); }
        L();
        var naive = NaiveAttention(q, k, v, T, Hq, Hkv, hd, masks);
        for (int i = 0; i < o.Length; i++) Assert.True(Math.Abs(o[i] - naive[i]) < 1e-5, $"forward {i}: {o[i]} vs {naive[i]}");
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        AttentionOp.Backward(w, q, k, v, o, lse, dq, dk, dv, T, Hq, Hkv, hd, masks);
        Check("dq", q, dq, L);
        Check("dk", k, dk, L);
        Check("dv", v, dv, L);
    }

    [Fact]
    public void StreamingMaskDefinition()
    {
        var m = KeyVisibility.Streaming(2, 3);
        // row 7 sees sinks 0, 1 and window 5, 6, 7
        Assert.Equal([0, 1, 5, 6, 7], Enumerable.Range(0, 10).Where(j => m.Sees(7, j)));
        Assert.Equal([0, 1, 2], Enumerable.Range(0, 10).Where(j => m.Sees(2, j)));
        for (int i = 0; i < 12; i++)
        {
            var (se, ws) = m.Ranges(i);
            var fromRanges = Enumerable.Range(0, se).Concat(Enumerable.Range(ws, i - ws + 1));
            Assert.Equal(Enumerable.Range(0, 12).Where(j => m.Sees(i, j)), fromRanges);
        }
        Assert.True(Enumerable.Range(0, 8).All(j => KeyVisibility.Full.Sees(7, j)));
        Assert.False(KeyVisibility.Full.Sees(7, 8));
    }

    [Fact]
    public void HeadGate()
    {
        var rng = new Random(8);
        int T = 3, Hq = 4, Hkv = 2, hd = 3, n = T * Hq * hd;
        var full = Random(rng, n); var stream = Random(rng, n); float[] z = [0.3f, 0.8f];
        var w = Random(rng, n); var o = new float[n];
        double L() { HeadGateOp.Forward(full, stream, z, o, T, Hq, Hkv, hd); return Dot(w, o); }
        var df = new float[n]; var ds = new float[n]; var dz = new float[Hkv];
        HeadGateOp.Backward(w, full, stream, z, df, ds, dz, T, Hq, Hkv, hd);
        Check("dfull", full, df, L);
        Check("dstreaming", stream, ds, L);
        Check("dz", z, dz, L);
    }
}

public class HardConcreteTests
{
    [Fact]
    public void BackwardMatchesFiniteDifferencesAndClampsHaveZeroGradient()
    {
        float[] logAlpha = [-0.5f, 0.0f, 0.3f, 1.0f, -1.2f, 4.0f, -4.0f, 0.7f];
        float[] u = [0.3f, 0.5f, 0.45f, 0.2f, 0.8f, 0.5f, 0.5f, 0.6f];
        var z = new float[8];
        var w = GradCheck.Random(new Random(1), 8);
        double L() { HardConcreteOp.Forward(logAlpha, u, z); return GradCheck.Dot(w, z); }
        L();
        Assert.Equal(1f, z[5]); Assert.Equal(0f, z[6]); // log α = ±4 with u = ½ saturates the stretch
        var d = new float[8];
        HardConcreteOp.Backward(w, logAlpha, u, d);
        Assert.Equal(0f, d[5]); Assert.Equal(0f, d[6]);
        GradCheck.Check("dlogα", logAlpha, d, L, h: 1e-3f, indices: [0, 1, 2, 3, 4, 7]);
        // z at u = ½, log α = 0: s = ½, z = 1.2·½ − 0.1 = 0.5
        Assert.Equal(0.5f, z[1], 1e-5);
    }

    [Fact]
    public void DeterministicMaskAndProbabilityZero()
    {
        // P(z = 0) falls as log α grows; at log α = 4 (PruLong's init) it is tiny
        Assert.True(HardConcreteOp.ProbabilityZero(-2f) > HardConcreteOp.ProbabilityZero(0f));
        Assert.True(HardConcreteOp.ProbabilityZero(4f) < 1e-2);
        double x0 = 0.1 / 1.2;
        Assert.Equal(1 / (1 + Math.Exp(-(2.0 / 3 * Math.Log(x0 / (1 - x0))))), HardConcreteOp.ProbabilityZero(0f), 1e-5);
        var mask = HardConcreteOp.DeterministicMask([10f, -10f, 10f, -10f]);
        Assert.Equal([1f, 0f, 1f, 0f], mask.Select(m => MathF.Round(m, 3)));
        // sampling is deterministic given the seed and inside (0, 1)
        var u1 = new float[16]; var u2 = new float[16];
        HardConcreteOp.SampleUniform(new Random(7), u1); HardConcreteOp.SampleUniform(new Random(7), u2);
        Assert.Equal(u1, u2);
        Assert.All(u1, x => Assert.InRange(x, 1e-8f, 1 - 1e-8f));
    }
}
