using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace KvNotebooks.Kernels;

/// <summary>h = silu(gate) ⊙ up, element-wise (Llama's MLP activation).</summary>
public static class SwiGlu
{
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        // silu(g) = g · sigmoid(g)
        TensorPrimitives.Sigmoid(gate, h);
        TensorPrimitives.Multiply(h, gate, h);
        TensorPrimitives.Multiply(h, up, h);
    }

    /// <summary>
    /// The MLP activation of a fused gate/up product: row r of <paramref name="gateUp"/> is [gate (ff) | up (ff)],
    /// row r of <paramref name="h"/> [ff] becomes silu(gate) ⊙ up. One pass, rows split over the kernel threads;
    /// on AVX-512 (and its AVX2 twin, the same bits), sigmoid through an exp2 polynomial (relative error ~1e-7) instead
    /// of three vector passes.
    /// </summary>
    public static unsafe void Rows(ReadOnlySpan<float> gateUp, Span<float> h, int rows, int ff)
    {
        if (gateUp.Length < (long)rows * 2 * ff || h.Length < (long)rows * ff) throw new ArgumentException($"SwiGLU buffers hold fewer than {rows} rows");
        fixed (float* pgu = gateUp, ph = h)
        {
            float* cgu = pgu, ch = ph;
            RowParallel.For(rows, (long)rows * 3 * ff, (r0, r1) => Rows(cgu + (long)r0 * 2 * ff, 2 * ff, ch + (long)r0 * ff, ff, ff, r1 - r0));
        }
    }

    /// <summary>Rows of [gate | up] (stride ldgu) into h (stride ldh) on the calling thread.</summary>
    internal static unsafe void Rows(float* gateUp, int ldgu, float* h, int ldh, int ff, int rows)
    {
        var tier = Simd.Tier;
        for (int r = 0; r < rows; r++)
        {
            float* g = gateUp + (long)r * ldgu, u = g + ff, o = h + (long)r * ldh;
            int i = 0;
            if (tier == SimdTier.Avx512)
                for (; i + 16 <= ff; i += 16)
                {
                    var gv = Vector512.Load(g + i);
                    // sigmoid(g) = 1 / (1 + 2^(−g·log2 e)); the exponent is clamped at 128, where 2^x is +∞,
                    // so g ≪ 0 gives g·u/∞ = 0 (not NaN)
                    var e = VectorMath.Exp2(Vector512.Min(gv * Vector512.Create(-1.4426950408889634f), Vector512.Create(128f)));
                    (gv * Vector512.Load(u + i) / (Vector512<float>.One + e)).Store(o + i);
                }
            else if (tier == SimdTier.Avx2)
                for (; i + 16 <= ff; i += 16)   // the same elements as the AVX-512 loop (the rest goes to Forward below)
                {
                    Avx2Lanes(g + i, u + i, o + i);
                    Avx2Lanes(g + i + 8, u + i + 8, o + i + 8);
                }
            if (i < ff) Forward(new ReadOnlySpan<float>(g + i, ff - i), new ReadOnlySpan<float>(u + i, ff - i), new Span<float>(o + i, ff - i));
        }
    }

    /// <summary>Eight lanes of the AVX-512 loop's formula, op for op (the same bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Avx2Lanes(float* g, float* u, float* o)
    {
        var gv = Vector256.Load(g);
        var e = VectorMath.Exp2(Vector256.Min(gv * Vector256.Create(-1.4426950408889634f), Vector256.Create(128f)));
        (gv * Vector256.Load(u) / (Vector256<float>.One + e)).Store(o);
    }
}
