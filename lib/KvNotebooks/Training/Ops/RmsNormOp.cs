using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;

namespace KvNotebooks.Training.Ops;

/// <summary>RMSNorm: y = x · r · w with r = 1/sqrt(mean(x²) + eps), per row. Forward saves r.</summary>
/// <remarks>The scalar loops are the definition (and the portable path); with AVX-512 each row is done
/// 16 lanes at a time. Rows are split into a fixed number of blocks (run on several threads when
/// large); dw is summed per block and the blocks added in order, so results do not depend on threads.</remarks>
public static unsafe class RmsNormOp
{
    private const int Blocks = 8, MinRowsPerBlock = 64;

    /// <summary>x [rows × d], w [d] → y [rows × d], rstd [rows] (saved for backward).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int rows, int d, float eps)
    {
        if (x.Length < rows * d || y.Length < rows * d || w.Length < d || rstd.Length < rows) throw new ArgumentException("RMSNorm buffers too small");
        bool fast = Fast(d);
        fixed (float* px = x, pw = w, py = y, pr = rstd)
        {
            float* cx = px, cw = pw, cy = py, cr = pr;
            ForBlocks(rows, d, (r0, r1) =>
            {
                for (int r = r0; r < r1; r++)
                {
                    float* xr = cx + (long)r * d, yr = cy + (long)r * d;
                    float inv;
                    if (fast)
                    {
                        var acc = Vector512<float>.Zero;
                        for (int i = 0; i < d; i += 16) { var v = Vector512.Load(xr + i); acc = Vector512.FusedMultiplyAdd(v, v, acc); }
                        inv = (float)(1.0 / Math.Sqrt(Vector512.Sum(acc) / d + eps));
                        var vi = Vector512.Create(inv);
                        for (int i = 0; i < d; i += 16) (Vector512.Load(xr + i) * vi * Vector512.Load(cw + i)).Store(yr + i);
                    }
                    else
                    {
                        double ss = 0;
                        for (int i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
                        inv = (float)(1.0 / Math.Sqrt(ss / d + eps));
                        for (int i = 0; i < d; i++) yr[i] = xr[i] * inv * cw[i];
                    }
                    cr[r] = inv;
                }
            });
        }
    }

    /// <summary>dy [rows × d] → dx [rows × d] +=, dw [d] += (skipped when empty).
    /// dx_i = r·w_i·dy_i − x_i · r³/d · Σ_j w_j dy_j x_j;  dw_i = Σ_rows dy_i x_i r.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, int rows, int d)
    {
        if (dy.Length < rows * d || x.Length < rows * d || w.Length < d || rstd.Length < rows
            || (!dx.IsEmpty && dx.Length < rows * d) || (!dw.IsEmpty && dw.Length < d)) throw new ArgumentException("RMSNorm buffers too small");
        bool fast = Fast(d), wantDx = !dx.IsEmpty, wantDw = !dw.IsEmpty;
        int blocks = BlockCount(rows);
        var partial = wantDw ? Partials(blocks * d) : null;
        fixed (float* pdy = dy, px = x, pw = w, pr = rstd, pdx = dx, pp = partial)
        {
            float* cdy = pdy, cx = px, cw = pw, cr = pr, cdx = pdx, cp = pp;
            ForBlocks(rows, d, (r0, r1) =>
            {
                float* dwb = cp + (long)(r0 / RowsPerBlock(rows)) * d;   // this block's dw partial
                if (wantDw) new Span<float>(dwb, d).Clear();
                for (int r = r0; r < r1; r++)
                {
                    float* xr = cx + (long)r * d, dyr = cdy + (long)r * d, dxr = cdx + (long)r * d;
                    float inv = cr[r];
                    if (fast)
                    {
                        var vi = Vector512.Create(inv);
                        if (wantDx)
                        {
                            var acc = Vector512<float>.Zero;
                            for (int i = 0; i < d; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(cw + i) * Vector512.Load(dyr + i), Vector512.Load(xr + i), acc);
                            var c = Vector512.Create(Vector512.Sum(acc) * inv * inv * inv / d);
                            for (int i = 0; i < d; i += 16)
                            {
                                var t = vi * Vector512.Load(cw + i) * Vector512.Load(dyr + i) - c * Vector512.Load(xr + i);
                                (Vector512.Load(dxr + i) + t).Store(dxr + i);
                            }
                        }
                        if (wantDw)
                            for (int i = 0; i < d; i += 16)
                                Vector512.FusedMultiplyAdd(Vector512.Load(dyr + i) * Vector512.Load(xr + i), vi, Vector512.Load(dwb + i)).Store(dwb + i);
                        continue;
                    }
                    if (wantDx)
                    {
                        double dot = 0;
                        for (int i = 0; i < d; i++) dot += (double)cw[i] * dyr[i] * xr[i];
                        float c = (float)(dot * inv * inv * inv / d);
                        for (int i = 0; i < d; i++) dxr[i] += inv * cw[i] * dyr[i] - c * xr[i];
                    }
                    if (wantDw)
                        for (int i = 0; i < d; i++) dwb[i] += dyr[i] * xr[i] * inv;
                }
            });
            if (wantDw)
                for (int b = 0; b < blocks; b++)
                    for (int i = 0; i < d; i++) dw[i] += cp[(long)b * d + i];
        }
    }

    private static bool Fast(int d) => Vector512.IsHardwareAccelerated && !Gemm.ForcePortable && d % 16 == 0;

    private static int RowsPerBlock(int rows) => Math.Max(MinRowsPerBlock, (rows + Blocks - 1) / Blocks);
    private static int BlockCount(int rows) => (rows + RowsPerBlock(rows) - 1) / RowsPerBlock(rows);

    /// <summary>body(r0, r1) over a fixed split of the rows (fixed by the row count alone).</summary>
    private static void ForBlocks(int rows, int d, Action<int, int> body)
    {
        int per = RowsPerBlock(rows), blocks = BlockCount(rows);
        KernelOptions.For(blocks, (long)rows * d >= 1 << 15, b => body(b * per, Math.Min(rows, (b + 1) * per)));
    }

    [ThreadStatic] private static float[]? _partials;
    private static float[] Partials(int n) => _partials is { } p && p.Length >= n ? p : _partials = new float[n];
}
