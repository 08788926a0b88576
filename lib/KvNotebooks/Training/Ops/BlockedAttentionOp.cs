using System.Numerics.Tensors;
using KvNotebooks.Kernels;

namespace KvNotebooks.Training.Ops;

/// <summary>
/// The fast path of <see cref="AttentionOp"/>: same arguments, same results (to fp32 rounding),
/// computed flash-attention style in blocks of query rows (<see cref="DefaultBlockRows"/>) so that every
/// inner product is a <see cref="Gemm"/> call. Per block, only the visible key segments are
/// touched: [0, i1) for a full head; the sink segment and the window segment for a streaming head.
/// Scratch is one block of scores per segment (BlockRows × keys), never T × T.
/// With AVX-512 and head size 32 (our models) both directions go to <see cref="FlashAttention"/>
/// instead (fused register tiles; <c>blockRows</c> is then ignored); <see cref="ComputeContext.Portable"/>
/// forces the path below. <see cref="AttentionOp"/> stays the readable reference the tests compare both against.
/// </summary>
public static class BlockedAttentionOp
{
    /// <summary>Query rows per block unless a call says otherwise.</summary>
    public const int DefaultBlockRows = 64;

    [ThreadStatic] private static Scratch? _scratch;

    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks, int blockRows = DefaultBlockRows) =>
        Forward(q, k, v, o, lse, 1, T, numHeads, numKvHeads, headDim, masks, blockRows);

    /// <summary><paramref name="sequences"/> sequences of T rows back to back (q, o [S·T × Hq·hd], k, v [S·T × Hkv·hd],
    /// lse [S][Hq × T]), each attending only within itself: one parallel region for the whole batch.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int sequences, int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks, int blockRows = DefaultBlockRows)
    {
        Check(numHeads, numKvHeads, masks);
        CheckSizes(q.Length, k.Length, v.Length, o.Length, lse.Length, sequences, T, numHeads, numKvHeads, headDim);
        if (FlashAttention.Supports(headDim))
        {
            FlashAttention.Forward(q, k, v, o, lse, sequences, T, numHeads, numKvHeads, masks.ToArray());
            return;
        }
        int qs = T * numHeads * headDim, ks = T * numKvHeads * headDim, ls = numHeads * T;
        for (int b = 0; b < sequences; b++)
            ForwardOne(q.Slice(b * qs, qs), k.Slice(b * ks, ks), v.Slice(b * ks, ks), o.Slice(b * qs, qs), lse.Slice(b * ls, ls),
                T, numHeads, numKvHeads, headDim, masks, blockRows);
    }

    private static void ForwardOne(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks, int blockRows)
    {
        int hd = headDim, group = numHeads / numKvHeads, B = blockRows;
        var s = Scratch.Get(ref _scratch, T, hd, B);
        float scale = 1f / MathF.Sqrt(hd);
        for (int g = 0; g < numKvHeads; g++)
        {
            Gather(k, s.K, T, numKvHeads, g, hd);
            Gather(v, s.V, T, numKvHeads, g, hd);
            for (int h = g * group; h < (g + 1) * group; h++)
            {
                var mask = masks[h];
                Gather(q, s.Q, T, numHeads, h, hd);
                for (int i0 = 0; i0 < T; i0 += B)
                {
                    int nb = Math.Min(B, T - i0);
                    var segs = Segments(mask, i0, i0 + nb);
                    var qb = s.Q.AsSpan(i0 * hd, nb * hd);
                    for (int sg = 0; sg < segs.Count; sg++)
                    {
                        var (j0, len) = segs[sg];
                        Gemm.MatMulNT(qb, s.K.AsSpan(j0 * hd, len * hd), s.S[sg].AsSpan(0, nb * len), nb, len, hd);
                    }
                    // masked softmax per row over both segments; within a segment a row sees one contiguous range
                    for (int r = 0; r < nb; r++)
                    {
                        int i = i0 + r;
                        float max = float.NegativeInfinity;
                        for (int sg = 0; sg < segs.Count; sg++)
                        {
                            var (j0, len) = segs[sg];
                            var (lo, hi) = Visible(mask, i, j0, len);
                            if (hi <= lo) continue;
                            var vis = s.S[sg].AsSpan(r * len + lo, hi - lo);
                            TensorPrimitives.Multiply(vis, scale, vis);
                            max = MathF.Max(max, TensorPrimitives.Max(vis));
                        }
                        double sum = 0;
                        for (int sg = 0; sg < segs.Count; sg++)
                        {
                            var (j0, len) = segs[sg];
                            var (lo, hi) = Visible(mask, i, j0, len);
                            if (hi <= lo) continue;
                            var vis = s.S[sg].AsSpan(r * len + lo, hi - lo);
                            TensorPrimitives.Subtract(vis, max, vis);
                            TensorPrimitives.Exp(vis, vis);
                            sum += TensorPrimitives.Sum(vis);
                        }
                        lse[h * T + i] = max + (float)Math.Log(sum);
                        float inv = (float)(1.0 / sum);
                        for (int sg = 0; sg < segs.Count; sg++)
                        {
                            var (j0, len) = segs[sg];
                            var (lo, hi) = Visible(mask, i, j0, len);
                            var row = s.S[sg].AsSpan(r * len, len);
                            if (hi <= lo) { row.Clear(); continue; }
                            TensorPrimitives.Multiply(row[lo..hi], inv, row[lo..hi]);
                            row[..lo].Clear();
                            row[hi..].Clear();
                        }
                    }
                    var ob = s.O.AsSpan(0, nb * hd);
                    ob.Clear();
                    for (int sg = 0; sg < segs.Count; sg++)
                    {
                        var (j0, len) = segs[sg];
                        Gemm.MatMulNN(s.S[sg].AsSpan(0, nb * len), s.V.AsSpan(j0 * hd, len * hd), ob, nb, hd, len, accumulate: true);
                    }
                    for (int r = 0; r < nb; r++) ob.Slice(r * hd, hd).CopyTo(o.Slice(((i0 + r) * numHeads + h) * hd, hd));
                }
            }
        }
    }

    public static void Backward(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks, int blockRows = DefaultBlockRows) =>
        Backward(dO, q, k, v, o, lse, dq, dk, dv, 1, T, numHeads, numKvHeads, headDim, masks, blockRows);

    /// <summary>Backward of the batched <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, int, int, int, int, int, ReadOnlySpan{KeyVisibility}, int)"/>.</summary>
    public static void Backward(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int sequences, int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks, int blockRows = DefaultBlockRows) =>
        Backward(dO, q, k, v, o, lse, dq, dk, dv, sequences, T, numHeads, numKvHeads, headDim, masks, blockRows, accumulate: true);

    /// <summary>As above; dq, dk, dv are overwritten rather than added to when <paramref name="accumulate"/> is false.</summary>
    internal static void Backward(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int sequences, int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks, int blockRows, bool accumulate)
    {
        Check(numHeads, numKvHeads, masks);
        CheckSizes(q.Length, k.Length, v.Length, o.Length, lse.Length, sequences, T, numHeads, numKvHeads, headDim);
        CheckSizes(dq.Length, dk.Length, dv.Length, dO.Length, lse.Length, sequences, T, numHeads, numKvHeads, headDim);
        if (FlashAttention.Supports(headDim))
        {
            FlashAttention.Backward(dO, q, k, v, o, lse, dq, dk, dv, sequences, T, numHeads, numKvHeads, masks.ToArray(), accumulate);
            return;
        }
        if (!accumulate)
        {
            long rows = (long)sequences * T;
            dq[..(int)(rows * numHeads * headDim)].Clear();
            dk[..(int)(rows * numKvHeads * headDim)].Clear();
            dv[..(int)(rows * numKvHeads * headDim)].Clear();
        }
        int qs = T * numHeads * headDim, ks = T * numKvHeads * headDim, ls = numHeads * T;
        for (int b = 0; b < sequences; b++)
            BackwardOne(dO.Slice(b * qs, qs), q.Slice(b * qs, qs), k.Slice(b * ks, ks), v.Slice(b * ks, ks), o.Slice(b * qs, qs), lse.Slice(b * ls, ls),
                dq.Slice(b * qs, qs), dk.Slice(b * ks, ks), dv.Slice(b * ks, ks), T, numHeads, numKvHeads, headDim, masks, blockRows);
    }

    private static void BackwardOne(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks, int blockRows)
    {
        int hd = headDim, group = numHeads / numKvHeads, B = blockRows;
        var s = Scratch.Get(ref _scratch, T, hd, B);
        float scale = 1f / MathF.Sqrt(hd);
        for (int g = 0; g < numKvHeads; g++)
        {
            Gather(k, s.K, T, numKvHeads, g, hd);
            Gather(v, s.V, T, numKvHeads, g, hd);
            s.DK.AsSpan(0, T * hd).Clear();
            s.DV.AsSpan(0, T * hd).Clear();
            for (int h = g * group; h < (g + 1) * group; h++)
            {
                var mask = masks[h];
                Gather(q, s.Q, T, numHeads, h, hd);
                Gather(dO, s.DO, T, numHeads, h, hd);
                s.DQ.AsSpan(0, T * hd).Clear();
                for (int i0 = 0; i0 < T; i0 += B)
                {
                    int nb = Math.Min(B, T - i0);
                    var segs = Segments(mask, i0, i0 + nb);
                    var qb = s.Q.AsSpan(i0 * hd, nb * hd);
                    var dob = s.DO.AsSpan(i0 * hd, nb * hd);
                    // D_i = dO_i · o_i
                    for (int r = 0; r < nb; r++)
                    {
                        int off = ((i0 + r) * numHeads + h) * hd;
                        s.D[r] = TensorPrimitives.Dot(dO.Slice(off, hd), o.Slice(off, hd));
                    }
                    for (int sg = 0; sg < segs.Count; sg++)
                    {
                        var (j0, len) = segs[sg];
                        var P = s.S[sg].AsSpan(0, nb * len);
                        var dP = s.DP[sg].AsSpan(0, nb * len);
                        var kSeg = s.K.AsSpan(j0 * hd, len * hd);
                        var vSeg = s.V.AsSpan(j0 * hd, len * hd);
                        Gemm.MatMulNT(qb, kSeg, P, nb, len, hd);      // scores
                        Gemm.MatMulNT(dob, vSeg, dP, nb, len, hd);    // dP = dO · Vᵀ
                        for (int r = 0; r < nb; r++)
                        {
                            int i = i0 + r;
                            float l = lse[h * T + i], di = s.D[r];
                            var (lo, hi) = Visible(mask, i, j0, len);
                            var pr = P.Slice(r * len, len);
                            var dpr = dP.Slice(r * len, len);
                            if (hi > lo)
                            {
                                var pv = pr[lo..hi];
                                var dv2 = dpr[lo..hi];
                                // p = exp(s·scale − lse); dS = p · (dP − D) · scale
                                TensorPrimitives.Multiply(pv, scale, pv);
                                TensorPrimitives.Subtract(pv, l, pv);
                                TensorPrimitives.Exp(pv, pv);
                                TensorPrimitives.Subtract(dv2, di, dv2);
                                TensorPrimitives.Multiply(dv2, pv, dv2);
                                TensorPrimitives.Multiply(dv2, scale, dv2);
                            }
                            else { lo = hi = 0; }
                            pr[..lo].Clear(); pr[hi..].Clear();
                            dpr[..lo].Clear(); dpr[hi..].Clear();
                        }
                        Gemm.MatMulTN(P, dob, s.DV.AsSpan(j0 * hd, len * hd), len, hd, nb, accumulate: true); // dV += Pᵀ dO
                        Gemm.MatMulTN(dP, qb, s.DK.AsSpan(j0 * hd, len * hd), len, hd, nb, accumulate: true); // dK += dSᵀ Q
                        Gemm.MatMulNN(dP, kSeg, s.DQ.AsSpan(i0 * hd, nb * hd), nb, hd, len, accumulate: true); // dQ += dS K
                    }
                }
                ScatterAdd(s.DQ, dq, T, numHeads, h, hd);
            }
            ScatterAdd(s.DK, dk, T, numKvHeads, g, hd);
            ScatterAdd(s.DV, dv, T, numKvHeads, g, hd);
        }
    }

    /// <summary>Visible key segments (start, length) of query rows [i0, i1): one for a full head,
    /// sink + window (either may be empty) for a streaming head.</summary>
    private static SegmentPair Segments(KeyVisibility m, int i0, int i1)
    {
        if (m.IsFull) return new SegmentPair(1, 0, i1, 0, 0);
        int sinkEnd = Math.Min(m.SinkEnd, i1);
        int winStart = (int)Math.Max(sinkEnd, m.WindowStart(i0));
        var sink = (J0: 0, Len: sinkEnd);
        var win = (J0: winStart, Len: Math.Max(0, i1 - winStart));
        if (sink.Len == 0) return new SegmentPair(win.Len > 0 ? 1 : 0, win.J0, win.Len, 0, 0);
        return win.Len > 0 ? new SegmentPair(2, sink.J0, sink.Len, win.J0, win.Len) : new SegmentPair(1, sink.J0, sink.Len, 0, 0);
    }

    /// <summary>The keys row i sees inside segment [j0, j0 + len), as [lo, hi) relative to j0 (empty when hi ≤ lo):
    /// up to i (causal) and, for keys that are not sinks, from row i's window start on (segments never mix sinks and window).</summary>
    private static (int Lo, int Hi) Visible(KeyVisibility m, int i, int j0, int len)
    {
        long lo = j0;
        if (!m.IsFull && j0 >= m.SinkEnd) lo = Math.Max(lo, m.WindowStart(i));
        long hi = Math.Min((long)j0 + len, (long)i + 1);
        return ((int)(lo - j0), (int)Math.Max(lo, hi) - j0);
    }

    /// <summary>Up to two (start, length) key segments, without allocating.</summary>
    private readonly record struct SegmentPair(int Count, int J0a, int LenA, int J0b, int LenB)
    {
        public (int J0, int Len) this[int i] => i == 0 ? (J0a, LenA) : (J0b, LenB);
    }

    /// <summary>Head h of x [T × heads·hd] → dst [T × hd].</summary>
    private static void Gather(ReadOnlySpan<float> x, float[] dst, int T, int heads, int h, int hd)
    {
        for (int t = 0; t < T; t++) x.Slice((t * heads + h) * hd, hd).CopyTo(dst.AsSpan(t * hd, hd));
    }

    private static void ScatterAdd(float[] src, Span<float> x, int T, int heads, int h, int hd)
    {
        for (int t = 0; t < T; t++)
        {
            var d = x.Slice((t * heads + h) * hd, hd);
            var sr = src.AsSpan(t * hd, hd);
            for (int e = 0; e < hd; e++) d[e] += sr[e];
        }
    }

    private static void CheckSizes(int qLen, int kLen, int vLen, int oLen, int lseLen, int sequences, int T, int numHeads, int numKvHeads, int headDim)
    {
        if (sequences < 1 || T < 1 || headDim < 1) throw new ArgumentException($"need sequences, T and headDim ≥ 1 (got {sequences}, {T}, {headDim})");
        long rows = (long)sequences * T;
        if (qLen < rows * numHeads * headDim || oLen < rows * numHeads * headDim || kLen < rows * numKvHeads * headDim
            || vLen < rows * numKvHeads * headDim || lseLen < rows * numHeads)
            throw new ArgumentException($"attention buffers too small for {sequences} × {T} rows, {numHeads} heads ({numKvHeads} KV) of {headDim}");
    }

    private static void Check(int numHeads, int numKvHeads, ReadOnlySpan<KeyVisibility> masks)
    {
        if (numKvHeads <= 0 || numHeads % numKvHeads != 0) throw new ArgumentException($"{numHeads} query heads are not a multiple of {numKvHeads} KV heads");
        if (masks.Length != numHeads) throw new ArgumentException($"{masks.Length} head masks for {numHeads} query heads");
    }

    private sealed class Scratch
    {
        public int T, Hd, B;
        public float[] Q = [], K = [], V = [], O = [], DO = [], DQ = [], DK = [], DV = [], D = [];
        public float[][] S = [[], []], DP = [[], []];

        public static Scratch Get(ref Scratch? s, int T, int hd, int B)
        {
            if (s is not null && s.T >= T && s.Hd == hd && s.B == B) return s;
            s = new Scratch { T = T, Hd = hd, B = B };
            int th = T * hd;
            s.Q = new float[th]; s.K = new float[th]; s.V = new float[th]; s.DO = new float[th];
            s.DQ = new float[th]; s.DK = new float[th]; s.DV = new float[th];
            s.O = new float[B * hd]; s.D = new float[B];
            for (int i = 0; i < 2; i++) { s.S[i] = new float[B * T]; s.DP[i] = new float[B * T]; }
            return s;
        }
    }
}
