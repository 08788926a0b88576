using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace KvNotebooks.Kernels;

/// <summary>
/// The AVX2 + FMA twins of <see cref="MicroKernel32"/>'s kernels: the same panels (B packed [k × 32]), the same
/// arguments, and per element of C the same floating-point operations in the same order — acc = fma(a[i, kk],
/// b[kk, j], acc) for kk in order from +0, then C (+)= acc (the one-row kernel: even and odd kk in two chains, then
/// their sum) — so the results are bit for bit those of the AVX-512 kernels. AVX2 has 16 vector registers, not 32:
/// the six-row kernel covers a panel in two passes of 16 columns (12 Vector256 accumulators each), which changes
/// which register holds an element, not what is computed for it.
/// </summary>
internal static unsafe class MicroKernel32Avx2
{
    private const int NR = MicroKernel32.NR;

    /// <summary>Six rows of A (row r at a + r·lda) × one panel, as <see cref="MicroKernel32.Kernel6x32"/>.</summary>
    public static void Kernel6x32(float* a, int lda, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Kernel6x16(a, lda, 1, k, panel, c, ldc, Math.Min(cols, 16), accumulate);
        if (cols > 16) Kernel6x16(a, lda, 1, k, panel + 16, c + 16, ldc, cols - 16, accumulate);
    }

    /// <summary><see cref="Kernel6x32"/> with A read transposed (row r's k-th value at a[kk·lda + r]), as
    /// <see cref="MicroKernel32.Kernel6x32T"/>.</summary>
    public static void Kernel6x32T(float* a, int lda, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Kernel6x16(a, 1, lda, k, panel, c, ldc, Math.Min(cols, 16), accumulate);
        if (cols > 16) Kernel6x16(a, 1, lda, k, panel + 16, c + 16, ldc, cols - 16, accumulate);
    }

    /// <summary>Six rows (element (r, kk) at a[r·rowStride + kk·kStride]) × 16 columns of a panel (at panel, rows
    /// of the panel 32 apart): 12 accumulators; per step of k, two B loads and six broadcasts of A.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(float* a, long rowStride, long kStride, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + rowStride, a2 = a + 2 * rowStride, a3 = a + 3 * rowStride, a4 = a + 4 * rowStride, a5 = a + 5 * rowStride;
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector256.Load(panel + kk * NR);
            var b1 = Vector256.Load(panel + kk * NR + 8);
            long o = kk * kStride;
            var x = Vector256.Create(a0[o]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[o]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[o]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[o]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[o]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[o]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
        }
        Store(c, cols, accumulate, c00, c01);
        Store(c + ldc, cols, accumulate, c10, c11);
        Store(c + 2 * ldc, cols, accumulate, c20, c21);
        Store(c + 3 * ldc, cols, accumulate, c30, c31);
        Store(c + 4 * ldc, cols, accumulate, c40, c41);
        Store(c + 5 * ldc, cols, accumulate, c50, c51);
    }

    /// <summary>Two rows of A (element (r, kk) at a[r·rowStride + kk·kStride]) × one panel, as
    /// <see cref="MicroKernel32.Kernel2x32"/>: 8 accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel2x32(float* a, long rowStride, long kStride, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
        float* a0 = a, a1 = a + rowStride;
        for (int kk = 0; kk < k; kk++)
        {
            float* b = panel + kk * NR;
            var b0 = Vector256.Load(b); var b1 = Vector256.Load(b + 8); var b2 = Vector256.Load(b + 16); var b3 = Vector256.Load(b + 24);
            var x = Vector256.Create(a0[kk * kStride]);
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            c02 = Vector256.FusedMultiplyAdd(x, b2, c02); c03 = Vector256.FusedMultiplyAdd(x, b3, c03);
            x = Vector256.Create(a1[kk * kStride]);
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            c12 = Vector256.FusedMultiplyAdd(x, b2, c12); c13 = Vector256.FusedMultiplyAdd(x, b3, c13);
        }
        Store32(c, cols, accumulate, c00, c01, c02, c03);
        Store32(c + ldc, cols, accumulate, c10, c11, c12, c13);
    }

    /// <summary>One row of A (element kk at a[kk·kStride]) × one panel, as <see cref="MicroKernel32.Kernel1x32"/>:
    /// even kk into one chain, odd kk into another, summed at the end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel1x32(float* a, long kStride, int k, float* panel, float* c, int cols, bool accumulate)
    {
        Vector256<float> e0 = default, e1 = default, e2 = default, e3 = default, o0 = default, o1 = default, o2 = default, o3 = default;
        int kk = 0;
        for (; kk + 2 <= k; kk += 2)
        {
            float* b = panel + kk * NR;
            var x = Vector256.Create(a[kk * kStride]);
            e0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), e0); e1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), e1);
            e2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 16), e2); e3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 24), e3);
            var y = Vector256.Create(a[(kk + 1) * kStride]);
            o0 = Vector256.FusedMultiplyAdd(y, Vector256.Load(b + NR), o0); o1 = Vector256.FusedMultiplyAdd(y, Vector256.Load(b + NR + 8), o1);
            o2 = Vector256.FusedMultiplyAdd(y, Vector256.Load(b + NR + 16), o2); o3 = Vector256.FusedMultiplyAdd(y, Vector256.Load(b + NR + 24), o3);
        }
        if (kk < k)
        {
            float* b = panel + kk * NR;
            var x = Vector256.Create(a[kk * kStride]);
            e0 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b), e0); e1 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 8), e1);
            e2 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 16), e2); e3 = Vector256.FusedMultiplyAdd(x, Vector256.Load(b + 24), e3);
        }
        Store32(c, cols, accumulate, e0 + o0, e1 + o1, e2 + o2, e3 + o3);
    }

    /// <summary>Columns [0, cols ≤ 16) of C from two accumulators (C + acc when accumulating).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, int cols, bool accumulate, Vector256<float> lo, Vector256<float> hi)
    {
        if (cols == 16)
        {
            if (accumulate) { lo += Vector256.Load(c); hi += Vector256.Load(c + 8); }
            lo.Store(c);
            hi.Store(c + 8);
            return;
        }
        for (int j = 0; j < cols; j++)
        {
            float v = j < 8 ? lo.GetElement(j) : hi.GetElement(j - 8);
            c[j] = accumulate ? c[j] + v : v;
        }
    }

    /// <summary>Columns [0, cols ≤ 32) of C from four accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store32(float* c, int cols, bool accumulate, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3)
    {
        Store(c, Math.Min(cols, 16), accumulate, v0, v1);
        if (cols > 16) Store(c + 16, cols - 16, accumulate, v2, v3);
    }
}
