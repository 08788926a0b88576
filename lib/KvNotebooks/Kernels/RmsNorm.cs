using System.Numerics.Tensors;

namespace KvNotebooks.Kernels;

/// <summary>y = x / sqrt(mean(x²) + eps) · weight, per row (Llama's RMSNorm, computed in fp32).</summary>
public static class RmsNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int rows, float eps)
    {
        int d = weight.Length;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float ms = TensorPrimitives.Dot(xr, xr) / d;
            float inv = 1f / MathF.Sqrt(ms + eps);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, weight, yr);
        }
    }
}
