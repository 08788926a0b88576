using System.Numerics.Tensors;

namespace KvNotebooks.Kernels;

/// <summary>y = x / sqrt(mean(x²) + eps) · weight, per row (Llama's RMSNorm, computed in fp32).</summary>
public static class RmsNorm
{
    /// <summary>Rows are independent: large inputs are split over the kernel threads (same result per row).</summary>
    public static unsafe void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int rows, float eps)
    {
        int d = weight.Length;
        if (x.Length < rows * d || y.Length < rows * d) throw new ArgumentException($"RMSNorm buffers hold fewer than {rows} rows of {d}");
        fixed (float* px = x, pw = weight, py = y)
        {
            float* cx = px, cw = pw, cy = py;
            RowParallel.For(rows, (long)rows * d, (r0, r1) => Rows(cx + (long)r0 * d, d, cw, d, cy + (long)r0 * d, d, r1 - r0, eps));
        }
    }

    /// <summary>Rows of x (stride ldx) into y (stride ldy) on the calling thread.</summary>
    internal static unsafe void Rows(float* x, int ldx, float* weight, int d, float* y, int ldy, int rows, float eps)
    {
        var w = new ReadOnlySpan<float>(weight, d);
        for (int r = 0; r < rows; r++)
        {
            var xr = new ReadOnlySpan<float>(x + (long)r * ldx, d);
            var yr = new Span<float>(y + (long)r * ldy, d);
            float ms = TensorPrimitives.Dot(xr, xr) / d;
            float inv = 1f / MathF.Sqrt(ms + eps);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
    }
}
