using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvNotebooks.Kernels;

/// <summary>Element-wise math on whole registers for the AVX-512 kernels (inlined into their loops).</summary>
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
        var n = Avx512F.RoundScale(x, 0);     // round to nearest
        var f = x - n;                       // exact, in [−½, ½]
        var p = Vector512.Create(1.5461444855e-04f);
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1.3400427997e-03f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(9.6180569381e-03f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(5.5503271520e-02f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(2.4022650719e-01f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(6.9314718246e-01f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1f));
        return Avx512F.Scale(p, n);
    }
}
