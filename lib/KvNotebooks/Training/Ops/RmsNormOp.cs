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
                    BackwardRow(cdy + (long)r * d, cx + (long)r * d, cw, cr[r], wantDx ? cdx + (long)r * d : null, wantDw ? dwb : null, d, fast);
            });
            if (wantDw)
                for (int b = 0; b < blocks; b++)
                    for (int i = 0; i < d; i++) dw[i] += cp[(long)b * d + i];
        }
    }

    /// <summary><see cref="Backward"/> of a batch of <paramref name="fullRows"/> rows of which only the listed ones have
    /// dy ≠ 0: dy, x, rstd and dx hold just those rows, rowIndex[i] (increasing) is row i's place in the full batch.
    /// dx is what Backward gives those rows; dw gets bit for bit what Backward on the full batch adds (each row's
    /// term goes to the block partial its full-batch row belongs to, the partials are added in block order, and
    /// the rows left out would only have added zeros).</summary>
    public static void BackwardRows(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, ReadOnlySpan<int> rowIndex, int fullRows, int d)
    {
        int rows = rowIndex.Length;
        if (dy.Length < rows * d || x.Length < rows * d || w.Length < d || rstd.Length < rows
            || (!dx.IsEmpty && dx.Length < rows * d) || (!dw.IsEmpty && dw.Length < d)) throw new ArgumentException("RMSNorm buffers too small");
        for (int i = 0; i < rows; i++)
            if ((uint)rowIndex[i] >= (uint)fullRows || (i > 0 && rowIndex[i] <= rowIndex[i - 1]))
                throw new ArgumentException($"row indices must increase within [0, {fullRows}); row {i} is {rowIndex[i]}");
        bool fast = Fast(d), wantDx = !dx.IsEmpty, wantDw = !dw.IsEmpty;
        int per = RowsPerBlock(fullRows);
        var partial = wantDw ? Partials(d) : null;
        fixed (float* pdy = dy, px = x, pw = w, pdx = dx, pp = partial)
        {
            int block = -1;
            for (int i = 0; i < rows; i++)
            {
                int b = rowIndex[i] / per;
                if (wantDw && b != block)
                {
                    if (block >= 0) for (int j = 0; j < d; j++) dw[j] += pp[j];
                    new Span<float>(pp, d).Clear();
                    block = b;
                }
                BackwardRow(pdy + (long)i * d, px + (long)i * d, pw, rstd[i], wantDx ? pdx + (long)i * d : null, wantDw ? pp : null, d, fast);
            }
            if (wantDw && block >= 0) for (int j = 0; j < d; j++) dw[j] += pp[j];
        }
    }

    /// <summary>One row of backward: dxr += its dx (when dxr is given), dwb += its dw term (when given).</summary>
    private static void BackwardRow(float* dyr, float* xr, float* cw, float inv, float* dxr, float* dwb, int d, bool fast)
    {
        if (fast)
        {
            var vi = Vector512.Create(inv);
            if (dxr != null)
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
            if (dwb != null)
                for (int i = 0; i < d; i += 16)
                    Vector512.FusedMultiplyAdd(Vector512.Load(dyr + i) * Vector512.Load(xr + i), vi, Vector512.Load(dwb + i)).Store(dwb + i);
            return;
        }
        if (dxr != null)
        {
            double dot = 0;
            for (int i = 0; i < d; i++) dot += (double)cw[i] * dyr[i] * xr[i];
            float c = (float)(dot * inv * inv * inv / d);
            for (int i = 0; i < d; i++) dxr[i] += inv * cw[i] * dyr[i] - c * xr[i];
        }
        if (dwb != null)
            for (int i = 0; i < d; i++) dwb[i] += dyr[i] * xr[i] * inv;
    }

    private static bool Fast(int d) => Vector512.IsHardwareAccelerated && !ComputeContext.Current.Portable && d % 16 == 0;

    private static int RowsPerBlock(int rows) => Math.Max(MinRowsPerBlock, (rows + Blocks - 1) / Blocks);
    private static int BlockCount(int rows) => (rows + RowsPerBlock(rows) - 1) / RowsPerBlock(rows);

    /// <summary>body(r0, r1) over a fixed split of the rows (fixed by the row count alone).</summary>
    private static void ForBlocks(int rows, int d, Action<int, int> body)
    {
        int per = RowsPerBlock(rows), blocks = BlockCount(rows);
        ComputeContext.Current.For(blocks, (long)rows * d >= 1 << 15, b => body(b * per, Math.Min(rows, (b + 1) * per)));
    }

    [ThreadStatic] private static float[]? _partials;
    private static float[] Partials(int n) => _partials is { } p && p.Length >= n ? p : _partials = new float[n];
}
