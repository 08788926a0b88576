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

    /// <summary>dw [out × in] += dyᵀ·x and dbias [out] += Σ dy over some rows of a batch whose other rows have dy = 0:
    /// dy [rows × out] and x [rows × in] hold just those rows, rowIndex[i] (increasing) is row i's place in the batch.
    /// Rows go to the GEMM grouped by the k-blocks (<see cref="PackedNT.KC"/> rows) that Backward on the
    /// whole batch would cut, so dw is bit for bit what that call adds: a block's sum only loses zero terms.</summary>
    internal static void WeightGradRows(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, Span<float> dbias,
        ReadOnlySpan<int> rowIndex, int inDim, int outDim)
    {
        int rows = rowIndex.Length;
        if (dy.Length < rows * outDim || x.Length < rows * inDim) throw new ArgumentException($"{rows} rows need dy ≥ {rows * outDim} and x ≥ {rows * inDim} values");
        for (int i = 1; i < rows; i++)
            if (rowIndex[i] <= rowIndex[i - 1]) throw new ArgumentException($"row indices must increase; row {i} is {rowIndex[i]} after {rowIndex[i - 1]}");
        if (!dw.IsEmpty)
            for (int i0 = 0; i0 < rows;)
            {
                int block = rowIndex[i0] / PackedNT.KC, i1 = i0 + 1;
                while (i1 < rows && rowIndex[i1] / PackedNT.KC == block) i1++;
                Gemm.MatMulTN(dy.Slice(i0 * outDim, (i1 - i0) * outDim), x.Slice(i0 * inDim, (i1 - i0) * inDim), dw, outDim, inDim, i1 - i0, accumulate: true);
                i0 = i1;
            }
        if (!dbias.IsEmpty)
            for (int r = 0; r < rows; r++)
            {
                var d = dbias.Slice(0, outDim);
                TensorPrimitives.Add(d, dy.Slice(r * outDim, outDim), d);
            }
    }
}
