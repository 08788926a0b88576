using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;

namespace KvNotebooks.Kernels;

/// <summary>
/// An inference weight W [n × k] (Hugging Face Linear layout: [out × in]) packed once, at model load, into
/// panels of 32 output columns laid out [k × 32] (64-byte aligned, zero-padded), so that
/// <see cref="Multiply(ReadOnlySpan{float}, int, int, Span{float}, int, bool)"/> — C[m × n] (+)= A[m × k] · Wᵀ — runs the 6-row × 32-column AVX-512 micro-kernel
/// (on AVX2, its twin: the same bits) without packing anything per call. Single-threaded by design: the forward pass
/// splits rows over threads and calls this on each thread's own rows, so a row tile's activations stay in that core's L2.
/// Without either (or built under <see cref="ComputeContext.Portable"/>) it keeps the original layout and takes dot products.
/// (<see cref="Gemm"/>'s entry points are untouched: training's numerics depend on them.)
/// </summary>
public sealed unsafe class PackedWeight
{
    private const int NR = MicroKernel32.NR, KC = 256;   // KC: a k-block of a panel is 32 KB (L1); k ≤ 256 needs one pass (no reload of C)
    private readonly float[] _storage;     // pinned: the panels never move
    private readonly float* _panels;
    private readonly float[]? _plain;      // the [n × k] original, for the portable path
    private readonly SimdTier _tier;     // the micro-kernels' tier, or portable: the dot products on _plain

    /// <summary>Packs rows [0, n) of <paramref name="w"/> ([n × k]).</summary>
    public PackedWeight(ReadOnlySpan<float> w, int n, int k)
    {
        if (n <= 0 || k <= 0 || w.Length < (long)n * k) throw new ArgumentException($"a weight of {n} × {k} needs {(long)n * k} values, got {w.Length}");
        N = n;
        K = k;
        Panels = (n + NR - 1) / NR;
        _tier = Simd.Tier;
        if (_tier == SimdTier.Portable)
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
        if (_tier == SimdTier.Portable)
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
                PanelRows.Run(_tier, a + k0, lda, 0, m, kc, panel, c + col, ldc, cols, acc);
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
}
