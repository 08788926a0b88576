using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvNotebooks.Kernels;

/// <summary>Element-wise math on whole registers for the AVX-512 kernels and their AVX2 twins (inlined into their loops).</summary>
internal static class VectorMath
{
    /// <summary>
    /// 2^x, relative error ≈ 2e-8 before the final rounding (a degree-6 Chebyshev fit of 2^f on f ∈ [−½, ½],
    /// then vscalefps by the rounded integer part). x ≤ −150 (and −∞) gives 0; meant for softmax arguments
    /// x ≤ 0. About twice as fast as Vector512.Exp, which is what matters in attention's inner loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2(Vector512<float> x)
    {
        x = Vector512.Max(x, Vector512.Create(-150f));
        var n = Avx512Ops.RoundToNearest(x);     // round to nearest
        var f = x - n;                       // exact, in [−½, ½]
        var p = Vector512.Create(1.5461444855e-04f);
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1.3400427997e-03f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(9.6180569381e-03f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(5.5503271520e-02f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(2.4022650719e-01f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(6.9314718246e-01f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1f));
        return Avx512Ops.Scale(p, n);
    }

    /// <summary>The AVX2 twin of <see cref="Exp2(Vector512{float})"/>: the same operations lane by lane (vroundps for
    /// vrndscaleps, <see cref="Scale"/> for vscalefps), so the same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp2(Vector256<float> x)
    {
        x = Vector256.Max(x, Vector256.Create(-150f));
        var n = Avx.RoundToNearestInteger(x);
        var f = x - n;
        var p = Vector256.Create(1.5461444855e-04f);
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(1.3400427997e-03f));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(9.6180569381e-03f));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(5.5503271520e-02f));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(2.4022650719e-01f));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(6.9314718246e-01f));
        p = Vector256.FusedMultiplyAdd(p, f, Vector256.Create(1f));
        return Scale(p, n);
    }

    /// <summary>
    /// What vscalefps gives, on AVX2: p · 2^floor(n) rounded once, for p in [½, 2) (all the kernels scale). In two
    /// steps by powers of two that are normal floats, 2^e₁ · 2^e₂ with e₁ = ⌊e/2⌋: the first product is exact (it
    /// stays normal), so the second is the only rounding, subnormal results included. e is clamped to [−250, 254],
    /// beyond which the result is 0 or ∞ either way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Scale(Vector256<float> p, Vector256<float> n)
    {
        var e = Avx.ConvertToVector256Int32(Vector256.Min(Vector256.Max(Avx.Floor(n), Vector256.Create(-250f)), Vector256.Create(254f)));
        var e1 = Avx2.ShiftRightArithmetic(e, 1);
        return p * Pow2(e1) * Pow2(e - e1);
    }

    /// <summary>2^e for e in [−126, 127], from the exponent bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Pow2(Vector256<int> e) => Avx2.ShiftLeftLogical(e + Vector256.Create(127), 23).AsSingle();
}
