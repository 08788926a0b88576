using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace KvNotebooks.Kernels;

/// <summary>
/// The AVX-512 micro-kernels of the packed GEMMs (<see cref="PackedNT"/>, <see cref="PackedWeight"/>): rows of A
/// times one panel of B packed [k × 32] (64-byte aligned, zero-padded), into C (+)= with the accumulators in
/// Vector512 registers; cols (≤ 32) are the panel's real columns.
/// </summary>
internal static unsafe class MicroKernel32
{
    /// <summary>Columns of a panel (two Vector512).</summary>
    public const int NR = 32;

    /// <summary>Six rows of A (row r at a + r·lda) × one panel: 12 accumulators; per step of k, two B loads and six
    /// broadcasts of A (12 FMAs for 8 loads).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x32(float* a, int lda, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda;
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector512.Load(panel + kk * NR);
            var b1 = Vector512.Load(panel + kk * NR + 16);
            var x = Vector512.Create(a0[kk]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[kk]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[kk]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[kk]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[kk]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[kk]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
        }
        Store(c, cols, accumulate, c00, c01);
        Store(c + ldc, cols, accumulate, c10, c11);
        Store(c + 2 * ldc, cols, accumulate, c20, c21);
        Store(c + 3 * ldc, cols, accumulate, c30, c31);
        Store(c + 4 * ldc, cols, accumulate, c40, c41);
        Store(c + 5 * ldc, cols, accumulate, c50, c51);
    }

    /// <summary><see cref="Kernel6x32"/> with A read transposed: row r's k-th value at a[kk·lda + r].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x32T(float* a, int lda, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                         c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector512.Load(panel + kk * NR);
            var b1 = Vector512.Load(panel + kk * NR + 16);
            float* ak = a + (long)kk * lda;
            var x = Vector512.Create(ak[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(ak[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(ak[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(ak[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(ak[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(ak[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
        }
        Store(c, cols, accumulate, c00, c01);
        Store(c + ldc, cols, accumulate, c10, c11);
        Store(c + 2 * ldc, cols, accumulate, c20, c21);
        Store(c + 3 * ldc, cols, accumulate, c30, c31);
        Store(c + 4 * ldc, cols, accumulate, c40, c41);
        Store(c + 5 * ldc, cols, accumulate, c50, c51);
    }

    /// <summary>Two rows of A (element (r, kk) at a[r·rowStride + kk·kStride]) × one panel: four
    /// independent accumulators, enough to cover the FMA latency.</summary>
    public static void Kernel2x32(float* a, long rowStride, long kStride, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        float* a0 = a, a1 = a + rowStride;
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector512.Load(panel + kk * NR);
            var b1 = Vector512.Load(panel + kk * NR + 16);
            var x = Vector512.Create(a0[kk * kStride]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[kk * kStride]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
        }
        Store(c, cols, accumulate, c00, c01);
        Store(c + ldc, cols, accumulate, c10, c11);
    }

    /// <summary>One row of A (element kk at a[kk·kStride]) × one panel; even and odd k go to separate
    /// accumulators so that four FMA chains hide the latency.</summary>
    public static void Kernel1x32(float* a, long kStride, int k, float* panel, float* c, int cols, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        int kk = 0;
        for (; kk + 2 <= k; kk += 2)
        {
            var x = Vector512.Create(a[kk * kStride]);
            c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(panel + kk * NR), c0);
            c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(panel + kk * NR + 16), c1);
            var y = Vector512.Create(a[(kk + 1) * kStride]);
            c2 = Vector512.FusedMultiplyAdd(y, Vector512.Load(panel + (kk + 1) * NR), c2);
            c3 = Vector512.FusedMultiplyAdd(y, Vector512.Load(panel + (kk + 1) * NR + 16), c3);
        }
        if (kk < k)
        {
            var x = Vector512.Create(a[kk * kStride]);
            c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(panel + kk * NR), c0);
            c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(panel + kk * NR + 16), c1);
        }
        Store(c, cols, accumulate, c0 + c2, c1 + c3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, int cols, bool accumulate, Vector512<float> lo, Vector512<float> hi)
    {
        if (cols == NR)
        {
            if (accumulate) { lo += Vector512.Load(c); hi += Vector512.Load(c + 16); }
            lo.Store(c);
            hi.Store(c + 16);
            return;
        }
        // Partial panel (the last columns of C). No stackalloc here: it would stop inlining and make the
        // JIT keep the micro-kernel's accumulators in memory.
        for (int j = 0; j < cols; j++)
        {
            float v = j < 16 ? lo.GetElement(j) : hi.GetElement(j - 16);
            c[j] = accumulate ? c[j] + v : v;
        }
    }
}
