using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Numerics.Tensors;

namespace KvNotebooks.Kernels;

/// <summary>
/// An inference weight W [n × k] (Hugging Face Linear layout: [out × in]) packed once, at model load, into
/// panels of 32 output columns laid out [k × 32] (64-byte aligned, zero-padded), so that
/// <see cref="Multiply(ReadOnlySpan{float}, int, int, Span{float}, int, bool)"/> — C[m × n] (+)= A[m × k] · Wᵀ — runs the 6-row × 32-column AVX-512 micro-kernel
/// without packing anything per call. Single-threaded by design: the forward pass splits rows over threads
/// and calls this on each thread's own rows, so a row tile's activations stay in that core's L2.
/// Without AVX-512 (or built under <see cref="Gemm.ForcePortable"/>) it keeps the original layout and takes dot products.
/// (<see cref="Gemm"/>'s entry points are untouched: training's numerics depend on them.)
/// </summary>
public sealed unsafe class PackedWeight
{
    private const int MR = 6, NR = 32, KC = 256;   // KC: a k-block of a panel is 32 KB (L1); k ≤ 256 needs one pass (no reload of C)
    private readonly float[] _storage;     // pinned: the panels never move
    private readonly float* _panels;
    private readonly float[]? _plain;      // the [n × k] original, for the portable path
    private readonly bool _fast;

    /// <summary>Packs rows [0, n) of <paramref name="w"/> ([n × k]).</summary>
    public PackedWeight(ReadOnlySpan<float> w, int n, int k)
    {
        if (n <= 0 || k <= 0 || w.Length < (long)n * k) throw new ArgumentException($"a weight of {n} × {k} needs {(long)n * k} values, got {w.Length}");
        N = n;
        K = k;
        Panels = (n + NR - 1) / NR;
        _fast = Vector512.IsHardwareAccelerated && !Gemm.ForcePortable;
        if (!_fast)
        {
            _plain = w[..(n * k)].ToArray();
            _storage = [];
            return;
        }
        _storage = GC.AllocateUninitializedArray<float>(checked(Panels * NR * k + 16), pinned: true);
        _panels = (float*)(((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage)) + 63) & ~(nint)63);
        for (int p = 0; p < Panels; p++)
        {
            float* dst = _panels + (long)p * NR * k;
            for (int j = 0; j < NR; j++)
            {
                int col = p * NR + j;
                for (int kk = 0; kk < k; kk++) dst[kk * NR + j] = col < n ? w[col * k + kk] : 0f;
            }
        }
    }

    /// <summary>Output columns (rows of W).</summary>
    public int N { get; }
    /// <summary>Inner dimension (columns of W).</summary>
    public int K { get; }
    /// <summary>Panels of 32 output columns.</summary>
    public int Panels { get; }

    /// <summary>C[m × n] (+)= A[m × k] · Wᵀ on the calling thread; A rows <paramref name="lda"/> apart, C rows <paramref name="ldc"/>.</summary>
    public void Multiply(ReadOnlySpan<float> a, int lda, int m, Span<float> c, int ldc, bool accumulate = false)
    {
        if (m == 0) return;
        if (lda < K || ldc < N || a.Length < (long)(m - 1) * lda + K || c.Length < (long)(m - 1) * ldc + N)
            throw new ArgumentException($"GEMM buffers too small for m={m}, n={N}, k={K} (lda {lda}, ldc {ldc})");
        fixed (float* pa = a, pc = c) Multiply(pa, lda, m, pc, ldc, accumulate, 0, Panels);
    }

    /// <summary>Columns of panels [p0, p1) only (a decode step splits panels over threads).</summary>
    internal void Multiply(float* a, int lda, int m, float* c, int ldc, bool accumulate, int p0, int p1)
    {
        if (!_fast)
        {
            Portable(a, lda, m, c, ldc, accumulate, p0, p1);
            return;
        }
        int k = K;
        for (int k0 = 0; k0 < k; k0 += KC)
        {
            int kc = Math.Min(KC, k - k0);
            bool acc = accumulate || k0 > 0;
            for (int p = p0; p < p1; p++)
            {
                float* panel = _panels + (long)p * NR * k + (long)k0 * NR;
                int col = p * NR, cols = Math.Min(NR, N - col);
                int r = 0;
                for (; r + MR <= m; r += MR) Kernel6x32(a + (long)r * lda + k0, lda, kc, panel, c + (long)r * ldc + col, ldc, cols, acc);
                for (; r + 2 <= m; r += 2) Kernel2x32(a + (long)r * lda + k0, lda, kc, panel, c + (long)r * ldc + col, ldc, cols, acc);
                if (r < m) Kernel1x32(a + (long)r * lda + k0, kc, panel, c + (long)r * ldc + col, cols, acc);
            }
        }
    }

    private void Portable(float* a, int lda, int m, float* c, int ldc, bool accumulate, int p0, int p1)
    {
        int j0 = p0 * NR, j1 = Math.Min(N, p1 * NR);
        for (int i = 0; i < m; i++)
        {
            var ai = new ReadOnlySpan<float>(a + (long)i * lda, K);
            for (int j = j0; j < j1; j++)
            {
                float dot = TensorPrimitives.Dot(ai, _plain!.AsSpan(j * K, K));
                c[(long)i * ldc + j] = accumulate ? c[(long)i * ldc + j] + dot : dot;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x32(float* a, int lda, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
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

    private static void Kernel2x32(float* a, int lda, int k, float* panel, float* c, int ldc, int cols, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        float* a0 = a, a1 = a + lda;
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector512.Load(panel + kk * NR);
            var b1 = Vector512.Load(panel + kk * NR + 16);
            var x = Vector512.Create(a0[kk]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[kk]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
        }
        Store(c, cols, accumulate, c00, c01);
        Store(c + ldc, cols, accumulate, c10, c11);
    }

    /// <summary>One row: even and odd k in separate accumulators, four FMA chains to hide the latency.</summary>
    private static void Kernel1x32(float* a, int k, float* panel, float* c, int cols, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        int kk = 0;
        for (; kk + 2 <= k; kk += 2)
        {
            var x = Vector512.Create(a[kk]);
            c0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(panel + kk * NR), c0);
            c1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(panel + kk * NR + 16), c1);
            var y = Vector512.Create(a[kk + 1]);
            c2 = Vector512.FusedMultiplyAdd(y, Vector512.Load(panel + (kk + 1) * NR), c2);
            c3 = Vector512.FusedMultiplyAdd(y, Vector512.Load(panel + (kk + 1) * NR + 16), c3);
        }
        if (kk < k)
        {
            var x = Vector512.Create(a[kk]);
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
        // partial panel (the last columns); no stackalloc here, it would stop the inlining
        for (int j = 0; j < cols; j++)
        {
            float v = j < 16 ? lo.GetElement(j) : hi.GetElement(j - 16);
            c[j] = accumulate ? c[j] + v : v;
        }
    }
}
