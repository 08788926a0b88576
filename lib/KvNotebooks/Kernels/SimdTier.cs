using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvNotebooks.Kernels;

/// <summary>
/// Which hand-written kernels run. <see cref="Avx512"/>: Vector512 register tiles. <see cref="Avx2"/>: their
/// Vector256 twins (AVX2 + FMA), which perform, per output element, the same floating-point operations in the same
/// order, so they give the same bits (tests/KvNotebooks.Tests/Kernels/Avx2TwinTests.cs). <see cref="Portable"/>: the
/// TensorPrimitives and scalar code (other operation orders, so results differ from the tiers above by rounding).
/// </summary>
internal enum SimdTier { Portable, Avx2, Avx512 }

/// <summary>The tier a machine offers and the one kernels take now.</summary>
internal static class Simd
{
    /// <summary>What this machine runs in hardware: AVX-512, else AVX2 with FMA, else the portable code.</summary>
    public static readonly SimdTier Machine =
        Vector512.IsHardwareAccelerated ? SimdTier.Avx512
        : Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported ? SimdTier.Avx2
        : SimdTier.Portable;

    /// <summary>The tier of the ambient <see cref="ComputeContext"/> (portable when it says so).</summary>
    public static SimdTier Tier => ComputeContext.Current.Tier;
}
