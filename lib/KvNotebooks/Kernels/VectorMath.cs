using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvNotebooks.Kernels;

/// <summary>Element-wise math on whole registers for the AVX-512 kernels (inlined into their loops).</summary>
internal static class VectorMath
{
    /// <summary>
    /// 2^x, relative error ≤ 1e-7 (a degree-7 polynomial for 2^f on f ∈ [−½, ½], then vscalefps by
    /// the rounded integer part). x ≤ −150 (and −∞) gives 0; meant for softmax arguments x ≤ 0.
    /// About twice as fast as Vector512.Exp, which is what matters in attention's inner loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp2(Vector512<float> x)
    {
        x = Vector512.Max(x, Vector512.Create(-150f));
        var n = Avx512F.RoundScale(x, 0);     // round to nearest
        var f = x - n;                       // exact, in [−½, ½]
        var p = Vector512.Create(1.530610536076361E-05f);
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1.5403530393381606E-04f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1.3333558146428443E-03f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(9.6181291076284772E-03f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(5.5504108664821580E-02f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(2.4022650695910071E-01f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(6.9314718055994531E-01f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1f));
        return Avx512F.Scale(p, n);
    }
}
