using System.Numerics.Tensors;

namespace KvNotebooks.Training.Ops;

/// <summary>
/// DuoAttention / PruLong hybrid head: out = z·full + (1 − z)·streaming, with one gate z per KV
/// head shared by the query heads of its GQA group (docs/methods.md, "Head masks: DuoAttention and PruLong"). z ∈ [0, 1] is given
/// (DuoAttention: a clamped parameter; PruLong: a hard-concrete sample of log α); this op
/// returns dL/dz, the mask trainer applies the chain rule to its own parameter.
/// Layouts: full, streaming, out [T × Hq·hd]; z [Hkv].
/// </summary>
public static class HeadGateOp
{
    public static void Forward(ReadOnlySpan<float> full, ReadOnlySpan<float> streaming, ReadOnlySpan<float> z, Span<float> output,
        int T, int numHeads, int numKvHeads, int headDim)
    {
        int group = numHeads / numKvHeads, qs = numHeads * headDim;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < numHeads; h++)
            {
                float g = z[h / group];
                int off = t * qs + h * headDim;
                var o = output.Slice(off, headDim);
                TensorPrimitives.Multiply(full.Slice(off, headDim), g, o);
                TensorPrimitives.MultiplyAdd(streaming.Slice(off, headDim), 1f - g, o, o);
            }
    }

    /// <summary>dOut → dFull += z·dOut, dStreaming += (1 − z)·dOut, dz[g] += Σ dOut·(full − streaming)
    /// over the group's heads and all rows (dz skipped when empty).</summary>
    public static void Backward(ReadOnlySpan<float> dOut, ReadOnlySpan<float> full, ReadOnlySpan<float> streaming, ReadOnlySpan<float> z,
        Span<float> dFull, Span<float> dStreaming, Span<float> dz, int T, int numHeads, int numKvHeads, int headDim)
    {
        int group = numHeads / numKvHeads, qs = numHeads * headDim;
        Span<double> acc = stackalloc double[numKvHeads];
        Span<float> diff = headDim <= 256 ? stackalloc float[headDim] : new float[headDim];
        acc.Clear();
        for (int t = 0; t < T; t++)
            for (int h = 0; h < numHeads; h++)
            {
                float g = z[h / group];
                int off = t * qs + h * headDim;
                var go = dOut.Slice(off, headDim);
                var df = dFull.Slice(off, headDim);
                var ds = dStreaming.Slice(off, headDim);
                TensorPrimitives.MultiplyAdd(go, g, df, df);
                TensorPrimitives.MultiplyAdd(go, 1f - g, ds, ds);
                TensorPrimitives.Subtract(full.Slice(off, headDim), streaming.Slice(off, headDim), diff);
                acc[h / group] += TensorPrimitives.Dot(go, diff);
            }
        if (!dz.IsEmpty)
            for (int g = 0; g < numKvHeads; g++) dz[g] += (float)acc[g];
    }
}
