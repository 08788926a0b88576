namespace KvNotebooks.Kernels;

/// <summary>
/// Rows of A against one packed panel of B on the tier's micro-kernels (<see cref="MicroKernel32"/> on AVX-512, its
/// twin <see cref="MicroKernel32Avx2"/> on AVX2): six rows at a time, then the last rows two at a time, then one.
/// Which kernel a row gets depends on m alone, so both tiers give each row the same operations.
/// </summary>
internal static unsafe class PanelRows
{
    /// <summary>C rows [r0, r1) (+)= A rows [r0, r1) (row r at a + r·lda, k contiguous) × the panel's kc rows.</summary>
    public static void Run(SimdTier tier, float* a, int lda, int r0, int r1, int kc, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        int r = r0;
        if (tier == SimdTier.Avx512)
        {
            for (; r + 6 <= r1; r += 6) MicroKernel32.Kernel6x32(a + (long)r * lda, lda, kc, panel, c + (long)r * ldc, ldc, cols, accumulate);
            for (; r + 2 <= r1; r += 2) MicroKernel32.Kernel2x32(a + (long)r * lda, lda, 1, kc, panel, c + (long)r * ldc, ldc, cols, accumulate);
            if (r < r1) MicroKernel32.Kernel1x32(a + (long)r * lda, 1, kc, panel, c + (long)r * ldc, cols, accumulate);
            return;
        }
        for (; r + 6 <= r1; r += 6) MicroKernel32Avx2.Kernel6x32(a + (long)r * lda, lda, kc, panel, c + (long)r * ldc, ldc, cols, accumulate);
        for (; r + 2 <= r1; r += 2) MicroKernel32Avx2.Kernel2x32(a + (long)r * lda, lda, 1, kc, panel, c + (long)r * ldc, ldc, cols, accumulate);
        if (r < r1) MicroKernel32Avx2.Kernel1x32(a + (long)r * lda, 1, kc, panel, c + (long)r * ldc, cols, accumulate);
    }
}
