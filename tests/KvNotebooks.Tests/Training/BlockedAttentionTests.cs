using KvNotebooks.Training.Ops;
using static KvNotebooks.Tests.Training.GradCheck;

namespace KvNotebooks.Tests.Training;

/// <summary>The blocked (GEMM) attention against the row-by-row reference <see cref="AttentionOp"/>.</summary>
public class BlockedAttentionTests
{
    private static readonly KeyVisibility[] Mixed =
        [KeyVisibility.Full, KeyVisibility.Streaming(2, 5), KeyVisibility.Streaming(0, 3), KeyVisibility.Streaming(3, 1), KeyVisibility.Streaming(40, 2), KeyVisibility.Full];

    /// <summary>Block-granular streaming heads (the training rule).</summary>
    private static readonly KeyVisibility[] Blocks =
        [KeyVisibility.Streaming(1, 5, 4), KeyVisibility.Streaming(3, 9, 4), KeyVisibility.Full, KeyVisibility.Streaming(0, 6, 3), KeyVisibility.Streaming(5, 16, 8), KeyVisibility.Streaming(2, 2, 2)];

    [Theory]
    [InlineData(37, 8, 4, false)]
    [InlineData(37, 64, 4, false)]
    [InlineData(20, 7, 8, false)]
    [InlineData(37, 8, 4, true)]
    [InlineData(50, 16, 8, true)]
    public void MatchesReferenceForwardAndBackward(int T, int blockRows, int hd, bool blocks)
    {
        var masks = blocks ? Blocks : Mixed;
        var rng = new Random(T + blockRows);
        int Hq = 6, Hkv = 2;
        var q = Random(rng, T * Hq * hd, 1.5f); var k = Random(rng, T * Hkv * hd, 1.5f); var v = Random(rng, T * Hkv * hd);
        var dO = Random(rng, T * Hq * hd);
        var oRef = new float[q.Length]; var lseRef = new float[Hq * T];
        var o = new float[q.Length]; var lse = new float[Hq * T];
        AttentionOp.Forward(q, k, v, oRef, lseRef, T, Hq, Hkv, hd, masks);
        BlockedAttentionOp.Forward(q, k, v, o, lse, T, Hq, Hkv, hd, masks, blockRows);
        for (int i = 0; i < o.Length; i++) Assert.True(Math.Abs(o[i] - oRef[i]) < 1e-5, $"o[{i}] {o[i]} vs {oRef[i]}");
        for (int i = 0; i < lse.Length; i++) Assert.True(Math.Abs(lse[i] - lseRef[i]) < 1e-5, $"lse[{i}] {lse[i]} vs {lseRef[i]}");

        var (dqR, dkR, dvR) = (new float[q.Length], new float[k.Length], new float[v.Length]);
        var (dq, dk, dv) = (new float[q.Length], new float[k.Length], new float[v.Length]);
        AttentionOp.Backward(dO, q, k, v, oRef, lseRef, dqR, dkR, dvR, T, Hq, Hkv, hd, masks);
        dq[0] = dqR[0]; dk[0] = dkR[0]; dv[0] = dvR[0]; // backward accumulates: same starting values, doubled by the call
        BlockedAttentionOp.Backward(dO, q, k, v, o, lse, dq, dk, dv, T, Hq, Hkv, hd, masks, blockRows);
        dq[0] -= dqR[0]; dk[0] -= dkR[0]; dv[0] -= dvR[0];
        Close("dq", dqR, dq); Close("dk", dkR, dk); Close("dv", dvR, dv);
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var rng = new Random(3);
        int T = 13, Hq = 6, Hkv = 2, hd = 4;
        var q = Random(rng, T * Hq * hd, 1.5f); var k = Random(rng, T * Hkv * hd, 1.5f); var v = Random(rng, T * Hkv * hd);
        var w = Random(rng, T * Hq * hd);
        var o = new float[q.Length]; var lse = new float[Hq * T];
        double L() { BlockedAttentionOp.Forward(q, k, v, o, lse, T, Hq, Hkv, hd, Mixed, 4); return Dot(w, o); }
        L();
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        BlockedAttentionOp.Backward(w, q, k, v, o, lse, dq, dk, dv, T, Hq, Hkv, hd, Mixed, 4);
        Check("dq", q, dq, L); Check("dk", k, dk, L); Check("dv", v, dv, L);
    }

    private static void Close(string name, float[] expected, float[] actual)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 + 1e-4 * Math.Abs(expected[i]), $"{name}[{i}]: {actual[i]} vs {expected[i]}");
    }
}
