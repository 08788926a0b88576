using System.Numerics.Tensors;

namespace KvNotebooks.Training.Ops;

/// <summary>
/// Causal multi-head attention with grouped KV heads and a per-query-head <see cref="KeyVisibility"/>,
/// for training. Forward works one query row at a time (O(T) scratch for that row's scores) and
/// saves the row's log-sum-exp; backward recomputes the probabilities from it (flash-attention
/// style). No T × T matrix is ever stored.
/// Layouts: q, o [T × Hq·hd]; k, v [T × Hkv·hd]; lse [Hq × T]. Query head h reads KV head
/// h / (Hq / Hkv). Scores are scaled by 1/sqrt(hd). RoPE is applied by the caller.
/// </summary>
public static class AttentionOp
{
    [ThreadStatic] private static float[]? _scores;

    /// <summary>o_i = Σ_j softmax_j(q_i·k_j / √hd) v_j over the keys masks[h] lets row i see; lse[h·T + i] saved.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks)
    {
        Check(numHeads, numKvHeads, masks);
        if (_scores is null || _scores.Length < T) _scores = new float[T];
        var scores = _scores.AsSpan(0, T);
        int group = numHeads / numKvHeads, qs = numHeads * headDim, ks = numKvHeads * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        for (int h = 0; h < numHeads; h++)
        {
            int kvOff = h / group * headDim;
            var mask = masks[h];
            for (int i = 0; i < T; i++)
            {
                var qi = q.Slice(i * qs + h * headDim, headDim);
                var (sinkEnd, winStart) = mask.Ranges(i);
                // scores of visible keys, packed: [0, sinkEnd) then [winStart, i]
                int n = 0;
                for (int j = 0; j < sinkEnd; j++) scores[n++] = TensorPrimitives.Dot(qi, k.Slice(j * ks + kvOff, headDim)) * scale;
                for (int j = winStart; j <= i; j++) scores[n++] = TensorPrimitives.Dot(qi, k.Slice(j * ks + kvOff, headDim)) * scale;
                var s = scores[..n];
                float max = TensorPrimitives.Max(s);
                double sum = 0;
                for (int j = 0; j < n; j++) { s[j] = MathF.Exp(s[j] - max); sum += s[j]; }
                lse[h * T + i] = max + (float)Math.Log(sum);
                float inv = (float)(1.0 / sum);
                var oi = o.Slice(i * qs + h * headDim, headDim);
                oi.Clear();
                n = 0;
                for (int j = 0; j < sinkEnd; j++) TensorPrimitives.MultiplyAdd(v.Slice(j * ks + kvOff, headDim), s[n++] * inv, oi, oi);
                for (int j = winStart; j <= i; j++) TensorPrimitives.MultiplyAdd(v.Slice(j * ks + kvOff, headDim), s[n++] * inv, oi, oi);
            }
        }
    }

    /// <summary>
    /// dO [T × Hq·hd] → dq +=, dk +=, dv += (same layouts as q, k, v). With p_ij = exp(s_ij − lse_i) and
    /// D_i = dO_i·o_i: dv_j += p_ij dO_i; ds_ij = p_ij (dO_i·v_j − D_i); dq_i += ds_ij k_j/√hd; dk_j += ds_ij q_i/√hd.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int T, int numHeads, int numKvHeads, int headDim, ReadOnlySpan<KeyVisibility> masks)
    {
        Check(numHeads, numKvHeads, masks);
        int group = numHeads / numKvHeads, qs = numHeads * headDim, ks = numKvHeads * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        for (int h = 0; h < numHeads; h++)
        {
            int kvOff = h / group * headDim;
            var mask = masks[h];
            for (int i = 0; i < T; i++)
            {
                int qOff = i * qs + h * headDim;
                var qi = q.Slice(qOff, headDim);
                var doi = dO.Slice(qOff, headDim);
                var dqi = dq.Slice(qOff, headDim);
                float di = TensorPrimitives.Dot(doi, o.Slice(qOff, headDim));
                float l = lse[h * T + i];
                var (sinkEnd, winStart) = mask.Ranges(i);
                // visible keys: [0, sinkEnd) then [winStart, i]
                for (int seg = 0; seg < 2; seg++)
                {
                    int lo = seg == 0 ? 0 : winStart, hi = seg == 0 ? sinkEnd : i + 1;
                    for (int j = lo; j < hi; j++)
                    {
                        var kj = k.Slice(j * ks + kvOff, headDim);
                        var vj = v.Slice(j * ks + kvOff, headDim);
                        float p = MathF.Exp(TensorPrimitives.Dot(qi, kj) * scale - l);
                        var dvj = dv.Slice(j * ks + kvOff, headDim);
                        TensorPrimitives.MultiplyAdd(doi, p, dvj, dvj);
                        float ds = p * (TensorPrimitives.Dot(doi, vj) - di) * scale;
                        TensorPrimitives.MultiplyAdd(kj, ds, dqi, dqi);
                        var dkj = dk.Slice(j * ks + kvOff, headDim);
                        TensorPrimitives.MultiplyAdd(qi, ds, dkj, dkj);
                    }
                }
            }
        }
    }

    private static void Check(int numHeads, int numKvHeads, ReadOnlySpan<KeyVisibility> masks)
    {
        if (numKvHeads <= 0 || numHeads % numKvHeads != 0) throw new ArgumentException($"{numHeads} query heads are not a multiple of {numKvHeads} KV heads");
        if (masks.Length != numHeads) throw new ArgumentException($"{masks.Length} head masks for {numHeads} query heads");
    }
}
