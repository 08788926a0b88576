using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

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

    /// <summary>Rows of x (stride ldx) into y (stride ldy) on the calling thread (the inference forward's tiles:
    /// on AVX-512 or AVX2 with d a multiple of 64, one pass in registers instead of three TensorPrimitives calls).</summary>
    internal static unsafe void Rows(float* x, int ldx, float* weight, int d, float* y, int ldy, int rows, float eps)
    {
        var tier = Simd.Tier;
        if (tier == SimdTier.Avx512 && d % 64 == 0)
        {
            for (int r = 0; r < rows; r++)
            {
                float* xr = x + (long)r * ldx, yr = y + (long)r * ldy;
                Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
                for (int i = 0; i < d; i += 64)
                {
                    var a = Vector512.Load(xr + i); var b = Vector512.Load(xr + i + 16);
                    var c = Vector512.Load(xr + i + 32); var e = Vector512.Load(xr + i + 48);
                    s0 = Vector512.FusedMultiplyAdd(a, a, s0); s1 = Vector512.FusedMultiplyAdd(b, b, s1);
                    s2 = Vector512.FusedMultiplyAdd(c, c, s2); s3 = Vector512.FusedMultiplyAdd(e, e, s3);
                }
                float inv = 1f / MathF.Sqrt(Vector512.Sum((s0 + s1) + (s2 + s3)) / d + eps);
                var iv = Vector512.Create(inv);
                for (int i = 0; i < d; i += 16) (Vector512.Load(xr + i) * iv * Vector512.Load(weight + i)).Store(yr + i);
            }
            return;
        }
        if (tier == SimdTier.Avx2 && d % 64 == 0)
        {
            // the AVX2 twin: each 16-lane accumulator above as two (lo: lanes 0–7, hi: 8–15); Vector512.Sum is
            // Vector256.Sum(lower) + Vector256.Sum(upper), so the same sum, the same bits
            for (int r = 0; r < rows; r++)
            {
                float* xr = x + (long)r * ldx, yr = y + (long)r * ldy;
                Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, h0 = default, h1 = default, h2 = default, h3 = default;
                for (int i = 0; i < d; i += 64)
                {
                    var a = Vector256.Load(xr + i); var b = Vector256.Load(xr + i + 16);
                    var c = Vector256.Load(xr + i + 32); var e = Vector256.Load(xr + i + 48);
                    s0 = Vector256.FusedMultiplyAdd(a, a, s0); s1 = Vector256.FusedMultiplyAdd(b, b, s1);
                    s2 = Vector256.FusedMultiplyAdd(c, c, s2); s3 = Vector256.FusedMultiplyAdd(e, e, s3);
                    a = Vector256.Load(xr + i + 8); b = Vector256.Load(xr + i + 24);
                    c = Vector256.Load(xr + i + 40); e = Vector256.Load(xr + i + 56);
                    h0 = Vector256.FusedMultiplyAdd(a, a, h0); h1 = Vector256.FusedMultiplyAdd(b, b, h1);
                    h2 = Vector256.FusedMultiplyAdd(c, c, h2); h3 = Vector256.FusedMultiplyAdd(e, e, h3);
                }
                float inv = 1f / MathF.Sqrt((Vector256.Sum((s0 + s1) + (s2 + s3)) + Vector256.Sum((h0 + h1) + (h2 + h3))) / d + eps);
                var iv = Vector256.Create(inv);
                for (int i = 0; i < d; i += 8) (Vector256.Load(xr + i) * iv * Vector256.Load(weight + i)).Store(yr + i);
            }
            return;
        }
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
