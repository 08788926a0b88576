using System.Numerics.Tensors;
using KvNotebooks.Kernels;

namespace KvNotebooks.Training.Ops;

/// <summary>y = x · Wᵀ (+ b) with W in Hugging Face Linear layout [out × in].</summary>
public static class LinearOp
{
    /// <summary>x [rows × in], w [out × in], bias [out] or empty → y [rows × out]
    /// (added to y when <paramref name="accumulate"/>, which is how residual adds are fused).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y,
        int rows, int inDim, int outDim, bool accumulate = false)
    {
        Gemm.MatMulNT(x, w, y, rows, outDim, inDim, accumulate);
        if (!bias.IsEmpty)
            for (int r = 0; r < rows; r++)
            {
                var yr = y.Slice(r * outDim, outDim);
                TensorPrimitives.Add(yr, bias, yr);
            }
    }

    /// <summary>dy [rows × out] → dx [rows × in] += dy·W (NN), dw [out × in] += dyᵀ·x (TN),
    /// dbias [out] += Σ_rows dy. Any empty output is skipped.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        Span<float> dx, Span<float> dw, Span<float> dbias, int rows, int inDim, int outDim) =>
        Backward(dy, x, w, dx, dw, dbias, rows, inDim, outDim, accumulateDx: true);

    /// <summary>As above, but dx is overwritten (dx = dy·W) when <paramref name="accumulateDx"/> is false,
    /// which saves zeroing it first.</summary>
    internal static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        Span<float> dx, Span<float> dw, Span<float> dbias, int rows, int inDim, int outDim, bool accumulateDx)
    {
        if (!dx.IsEmpty) Gemm.MatMulNN(dy, w, dx, rows, inDim, outDim, accumulate: accumulateDx);
        if (!dw.IsEmpty) Gemm.MatMulTN(dy, x, dw, outDim, inDim, rows, accumulate: true);
        if (!dbias.IsEmpty)
            for (int r = 0; r < rows; r++)
            {
                var d = dbias.Slice(0, outDim);
                TensorPrimitives.Add(d, dy.Slice(r * outDim, outDim), d);
            }
    }
}
