namespace KvNotebooks.Training.Ops;

/// <summary>RMSNorm: y = x · r · w with r = 1/sqrt(mean(x²) + eps), per row. Forward saves r.</summary>
public static class RmsNormOp
{
    /// <summary>x [rows × d], w [d] → y [rows × d], rstd [rows] (saved for backward).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int rows, int d, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
            float inv = (float)(1.0 / Math.Sqrt(ss / d + eps));
            rstd[r] = inv;
            for (int i = 0; i < d; i++) yr[i] = xr[i] * inv * w[i];
        }
    }

    /// <summary>dy [rows × d] → dx [rows × d] +=, dw [d] += (skipped when empty).
    /// dx_i = r·w_i·dy_i − x_i · r³/d · Σ_j w_j dy_j x_j;  dw_i = Σ_rows dy_i x_i r.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, int rows, int d)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * d, d);
            var dyr = dy.Slice(r * d, d);
            float inv = rstd[r];
            if (!dx.IsEmpty)
            {
                double dot = 0;
                for (int i = 0; i < d; i++) dot += (double)w[i] * dyr[i] * xr[i];
                float c = (float)(dot * inv * inv * inv / d);
                var dxr = dx.Slice(r * d, d);
                for (int i = 0; i < d; i++) dxr[i] += inv * w[i] * dyr[i] - c * xr[i];
            }
            if (!dw.IsEmpty)
                for (int i = 0; i < d; i++) dw[i] += dyr[i] * xr[i] * inv;
        }
    }
}
