using KvNotebooks.Kernels;
using KvNotebooks.Training.Ops;
using static KvNotebooks.Tests.Training.GradCheck;

namespace KvNotebooks.Tests.Training;

/// <summary>
/// <see cref="BlockedAttentionOp"/> at head size 32, where AVX-512 machines take the fused
/// <see cref="FlashAttention"/> tiles (and <see cref="ComputeContext.Portable"/> the GEMM blocks), against the
/// row-by-row reference <see cref="AttentionOp"/>: odd lengths around the 8/32/64 tile sizes, GQA, every
/// kind of mask edge, batches, 1 and 2 threads.
/// </summary>
public class FlashAttentionTests
{
    private const int Hd = 32;

    /// <summary>Full heads and streaming heads whose sink / window edges fall inside and across tiles.</summary>
    private static readonly KeyVisibility[] Mixed =
    [
        KeyVisibility.Full, KeyVisibility.Streaming(2, 5), KeyVisibility.Streaming(0, 3), KeyVisibility.Streaming(3, 1),
        KeyVisibility.Streaming(40, 2), KeyVisibility.Full, KeyVisibility.Streaming(0, 70), KeyVisibility.Streaming(64, 64),
    ];

    /// <summary>Block-granular streaming heads (the training rule): blocks smaller and larger than the 8/32/64 tiles,
    /// sinks and windows that are not multiples of the block.</summary>
    private static readonly KeyVisibility[] Blocks =
    [
        KeyVisibility.Streaming(1, 5, 4), KeyVisibility.Streaming(0, 64, 64), KeyVisibility.Streaming(3, 9, 4), KeyVisibility.Full,
        KeyVisibility.Streaming(40, 2, 8), KeyVisibility.Streaming(64, 128, 32), KeyVisibility.Streaming(2, 16, 2), KeyVisibility.Streaming(7, 33, 16),
    ];

    public static TheoryData<int, int, int, bool, string> Cases()
    {
        var d = new TheoryData<int, int, int, bool, string>();
        foreach (int T in new[] { 1, 5, 31, 33, 64, 65, 100, 130, 257 })
            foreach (int threads in new[] { 1, 2 })
            {
                d.Add(T, 8, threads, false, "mixed");      // GQA 8/2 with mixed masks
                d.Add(T, 1, threads, false, "mixed");      // one KV head for all 8 query heads
            }
        foreach (int T in new[] { 33, 130 }) d.Add(T, 8, 1, true, "mixed");   // forced portable path
        foreach (int T in new[] { 7, 64, 97, 300 })
        {
            d.Add(T, 8, 2, false, "blocks");               // block-granular streaming heads
            d.Add(T, 8, 1, true, "blocks");
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesReferenceForwardAndBackward(int T, int kvHeadsCode, int threads, bool portable, string maskSet)
    {
        int Hq = 8, Hkv = kvHeadsCode == 8 ? 2 : 1;
        var masks = maskSet == "blocks" ? Blocks : Mixed;
        var rng = new Random(T * 31 + Hkv + threads);
        var q = Random(rng, T * Hq * Hd, 1f); var k = Random(rng, T * Hkv * Hd, 1f); var v = Random(rng, T * Hkv * Hd);
        var dO = Random(rng, T * Hq * Hd);
        var oRef = new float[q.Length]; var lseRef = new float[Hq * T];
        AttentionOp.Forward(q, k, v, oRef, lseRef, T, Hq, Hkv, Hd, masks);
        var (dqR, dkR, dvR) = (new float[q.Length], new float[k.Length], new float[v.Length]);
        AttentionOp.Backward(dO, q, k, v, oRef, lseRef, dqR, dkR, dvR, T, Hq, Hkv, Hd, masks);

        var o = new float[q.Length]; var lse = new float[Hq * T];
        var (dq, dk, dv) = (new float[q.Length], new float[k.Length], new float[v.Length]);
        dq[0] = 1f; dk[^1] = 2f; dv[0] = 3f;     // backward accumulates
        WithThreads(threads, portable, () =>
        {
            BlockedAttentionOp.Forward(q, k, v, o, lse, T, Hq, Hkv, Hd, masks);
            BlockedAttentionOp.Backward(dO, q, k, v, o, lse, dq, dk, dv, T, Hq, Hkv, Hd, masks);
        });
        dq[0] -= 1f; dk[^1] -= 2f; dv[0] -= 3f;
        Close("o", oRef, o, 2e-6, 2e-5); Close("lse", lseRef, lse, 2e-6, 2e-6);
        Close("dq", dqR, dq); Close("dk", dkR, dk); Close("dv", dvR, dv);
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(2, 3)]
    [InlineData(1, 8)]    // 8 sequences × 2 KV heads: work units gather their own inputs (local mode)
    [InlineData(2, 8)]
    public void ABatchEqualsItsSequencesAndThreadsDoNotChangeBits(int threads, int S)
    {
        int T = 77, Hq = 8, Hkv = 2, qs = T * Hq * Hd, ks = T * Hkv * Hd;
        var rng = new Random(5);
        var q = Random(rng, S * qs); var k = Random(rng, S * ks); var v = Random(rng, S * ks); var dO = Random(rng, S * qs);
        (float[] o, float[] lse, float[] dq, float[] dk, float[] dv) Run(int th, bool batched)
        {
            var r = (o: new float[S * qs], lse: new float[S * Hq * T], dq: new float[S * qs], dk: new float[S * ks], dv: new float[S * ks]);
            WithThreads(th, false, () =>
            {
                if (batched)
                {
                    BlockedAttentionOp.Forward(q, k, v, r.o, r.lse, S, T, Hq, Hkv, Hd, Mixed);
                    BlockedAttentionOp.Backward(dO, q, k, v, r.o, r.lse, r.dq, r.dk, r.dv, S, T, Hq, Hkv, Hd, Mixed);
                    return;
                }
                for (int b = 0; b < S; b++)
                {
                    var (qb, kb, lb) = (b * qs, b * ks, b * Hq * T);
                    BlockedAttentionOp.Forward(q.AsSpan(qb, qs), k.AsSpan(kb, ks), v.AsSpan(kb, ks), r.o.AsSpan(qb, qs), r.lse.AsSpan(lb, Hq * T), T, Hq, Hkv, Hd, Mixed);
                    BlockedAttentionOp.Backward(dO.AsSpan(qb, qs), q.AsSpan(qb, qs), k.AsSpan(kb, ks), v.AsSpan(kb, ks), r.o.AsSpan(qb, qs), r.lse.AsSpan(lb, Hq * T),
                        r.dq.AsSpan(qb, qs), r.dk.AsSpan(kb, ks), r.dv.AsSpan(kb, ks), T, Hq, Hkv, Hd, Mixed);
                }
            });
            return r;
        }
        var one = Run(threads, false);
        var batch = Run(threads, true);
        Close("o", one.o, batch.o); Close("lse", one.lse, batch.lse);
        Close("dq", one.dq, batch.dq); Close("dk", one.dk, batch.dk); Close("dv", one.dv, batch.dv);
        // bitwise reproducible across thread counts (training resumes must not depend on scheduling)
        var other = Run(3 - threads, true);
        Assert.Equal(batch.o, other.o); Assert.Equal(batch.lse, other.lse);
        Assert.Equal(batch.dq, other.dq); Assert.Equal(batch.dk, other.dk); Assert.Equal(batch.dv, other.dv);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OverwritingBackwardIgnoresWhatWasThere(bool portable)
    {
        int S = 2, T = 45, Hq = 8, Hkv = 2;
        var rng = new Random(9);
        var q = Random(rng, S * T * Hq * Hd); var k = Random(rng, S * T * Hkv * Hd); var v = Random(rng, S * T * Hkv * Hd);
        var dO = Random(rng, q.Length);
        var o = new float[q.Length]; var lse = new float[S * Hq * T];
        var (dq, dk, dv) = (new float[q.Length], new float[k.Length], new float[v.Length]);
        var (dq2, dk2, dv2) = (Random(rng, q.Length, 9f), Random(rng, k.Length, 9f), Random(rng, v.Length, 9f));
        WithThreads(2, portable, () =>
        {
            BlockedAttentionOp.Forward(q, k, v, o, lse, S, T, Hq, Hkv, Hd, Mixed);
            BlockedAttentionOp.Backward(dO, q, k, v, o, lse, dq, dk, dv, S, T, Hq, Hkv, Hd, Mixed);
            BlockedAttentionOp.Backward(dO, q, k, v, o, lse, dq2, dk2, dv2, S, T, Hq, Hkv, Hd, Mixed, BlockedAttentionOp.DefaultBlockRows, accumulate: false);
        });
        Assert.Equal(dq, dq2); Assert.Equal(dk, dk2); Assert.Equal(dv, dv2);
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var rng = new Random(3);
        int T = 70, Hq = 2, Hkv = 1;
        KeyVisibility[] masks = [KeyVisibility.Full, KeyVisibility.Streaming(3, 20)];
        var q = Random(rng, T * Hq * Hd, 0.5f); var k = Random(rng, T * Hkv * Hd, 0.5f); var v = Random(rng, T * Hkv * Hd);
        var w = Random(rng, T * Hq * Hd);
        var o = new float[q.Length]; var lse = new float[Hq * T];
        double L() { BlockedAttentionOp.Forward(q, k, v, o, lse, T, Hq, Hkv, Hd, masks); return Dot(w, o); }
        L();
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        BlockedAttentionOp.Backward(w, q, k, v, o, lse, dq, dk, dv, T, Hq, Hkv, Hd, masks);
        var some = Enumerable.Range(0, 97).Select(i => i * 43 % q.Length).ToArray();
        var someKv = Enumerable.Range(0, 97).Select(i => i * 23 % k.Length).ToArray();
        Check("dq", q, dq, L, indices: some); Check("dk", k, dk, L, indices: someKv); Check("dv", v, dv, L, indices: someKv);
    }

    private static void WithThreads(int threads, bool portable, Action body)
    {
        using var scope = new ComputeContext(threads, portable).Enter();
        body();
    }

    private static void Close(string name, float[] expected, float[] actual, double abs = 1e-5, double rel = 1e-4)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= abs + rel * Math.Abs(expected[i]), $"{name}[{i}]: {actual[i]} vs {expected[i]}");
    }
}
