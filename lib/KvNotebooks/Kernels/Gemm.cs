using System.Numerics.Tensors;

namespace KvNotebooks.Kernels;

/// <summary>
/// Dense fp32 matrix products, row-major. NT is the inference shape (activations × a Hugging Face
/// Linear weight stored [out × in]); NN and TN are what backward passes need.
/// </summary>
public static class Gemm
{
    /// <summary>C[m×n] (+)= A[m×k] · Bᵀ where B is stored [n×k].</summary>
    public static void MatMulNT(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate = false)
    {
        CheckSizes(a.Length, b.Length, c.Length, m, n, k);
        if (UsePacked(m, k))
        {
            PackedNT.Run(a, b, c, m, n, k, accumulate);
            return;
        }
        PortableNT(a, b, c, m, n, k, accumulate);
    }

    /// <summary>Dot products through TensorPrimitives (itself Vector512 → Vector256 → scalar): decode
    /// (m small, memory-bound) and machines without AVX-512 or AVX2.</summary>
    internal static void PortableNT(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate)
    {
        // Below ~1M multiply-adds (every decode GEMV of a small model) a thread hand-off costs more than it saves.
        if (m * (long)n * k > 1 << 20 && ComputeContext.Current.Threads > 1 && n >= 64)
        {
            unsafe
            {
                fixed (float* pa = a, pb = b, pc = c)
                {
                    float* ca = pa, cb = pb, cc = pc;
                    int chunks = Math.Min(ComputeContext.Current.Threads * 4, n / 16);
                    Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = ComputeContext.Current.Threads }, t =>
                    {
                        int j0 = (int)((long)n * t / chunks), j1 = (int)((long)n * (t + 1) / chunks);
                        for (int i = 0; i < m; i++)
                            for (int j = j0; j < j1; j++)
                            {
                                float dot = TensorPrimitives.Dot(new ReadOnlySpan<float>(ca + i * k, k), new ReadOnlySpan<float>(cb + (long)j * k, k));
                                cc[i * n + j] = accumulate ? cc[i * n + j] + dot : dot;
                            }
                    });
                }
            }
            return;
        }
        for (int i = 0; i < m; i++)
        {
            var ai = a.Slice(i * k, k);
            var ci = c.Slice(i * n, n);
            for (int j = 0; j < n; j++)
            {
                float dot = TensorPrimitives.Dot(ai, b.Slice(j * k, k));
                ci[j] = accumulate ? ci[j] + dot : dot;
            }
        }
    }

    private static bool UsePacked(int m, int k) => Simd.Tier != SimdTier.Portable && m >= 8 && k > 0;

    /// <summary>C[m×n] (+)= A[m×k] · B[k×n].</summary>
    public static void MatMulNN(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate = false)
    {
        CheckSizes(a.Length, b.Length, c.Length, m, n, k);
        if (UsePacked(m, k))
        {
            PackedNT.RunNN(a, b, c, m, n, k, accumulate);   // panels packed straight from B's rows
            return;
        }
        for (int i = 0; i < m; i++)
        {
            var ci = c.Slice(i * n, n);
            if (!accumulate) ci.Clear();
            for (int p = 0; p < k; p++)
                TensorPrimitives.MultiplyAdd(b.Slice(p * n, n), a[i * k + p], ci, ci);
        }
    }

    /// <summary>C[m×n] (+)= Aᵀ · B where A is stored [k×m] and B [k×n] (weight gradients).</summary>
    public static void MatMulTN(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate = false)
    {
        CheckSizes(a.Length, b.Length, c.Length, m, n, k);
        if (UsePacked(m, k))
        {
            PackedNT.RunTN(a, b, c, m, n, k, accumulate);   // A read transposed by the micro-kernel
            return;
        }
        if (!accumulate) c.Slice(0, m * n).Clear();
        for (int p = 0; p < k; p++)
        {
            var bp = b.Slice(p * n, n);
            for (int i = 0; i < m; i++)
            {
                var ci = c.Slice(i * n, n);
                TensorPrimitives.MultiplyAdd(bp, a[p * m + i], ci, ci);
            }
        }
    }

    internal static void CheckSizes(int aLen, int bLen, int cLen, int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"GEMM sizes must be ≥ 0 (m={m}, n={n}, k={k})");
        if (aLen < (long)m * k || bLen < (long)n * k || cLen < (long)m * n)
            throw new ArgumentException($"GEMM buffers too small for m={m}, n={n}, k={k}: |A|={aLen}, |B|={bLen}, |C|={cLen}");
    }
}
