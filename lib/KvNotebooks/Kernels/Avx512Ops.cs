using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KvNotebooks.Kernels;

/// <summary>
/// The AVX-512 instructions the kernels use beyond .NET's cross-platform Vector512 API. On an AVX-512 machine each
/// is the instruction (Avx512F.IsSupported is a JIT-time constant: nothing else is compiled). Elsewhere each computes
/// in software exactly what the instruction gives, so that the AVX-512 kernels can run (slowly, through .NET's
/// software Vector512) where tests hold their AVX2 twins to them bit for bit.
/// </summary>
internal static class Avx512Ops
{
    /// <summary>vrndscaleps with imm8 0: each lane rounded to the nearest integer, ties to even.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> RoundToNearest(Vector512<float> x) => Avx512F.IsSupported ? Avx512F.RoundScale(x, 0) : Lanes(x, MathF.Round);

    /// <summary>vscalefps: p · 2^floor(n) per lane, rounded once (to a subnormal or 0 below the normal range, ±∞ above).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Scale(Vector512<float> p, Vector512<float> n) => Avx512F.IsSupported ? Avx512F.Scale(p, n) : SoftScale(p, n);

    /// <summary>vpermt2ps: lane i = (idx[i] bit 4 ? hi : lo)[idx[i] mod 16], a lookup in a table of 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> PermuteVar16x32x2(Vector512<float> lo, Vector512<int> idx, Vector512<float> hi) =>
        Avx512F.IsSupported ? Avx512F.PermuteVar16x32x2(lo, idx, hi) : SoftPermute(lo, idx, hi);

    /// <summary>vshuff32x4: 128-bit lanes [a[imm₀], a[imm₁], b[imm₂], b[imm₃]] (two bits each).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Shuffle4x128(Vector512<float> a, Vector512<float> b, [ConstantExpected] byte imm) =>
        Avx512F.IsSupported ? Avx512F.Shuffle4x128(a, b, imm) : SoftShuffle(a, b, imm, quarters: true);

    /// <summary>vshufps: in each 128-bit lane L, [a_L[imm₀], a_L[imm₁], b_L[imm₂], b_L[imm₃]].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Shuffle(Vector512<float> a, Vector512<float> b, [ConstantExpected] byte imm) =>
        Avx512F.IsSupported ? Avx512F.Shuffle(a, b, imm) : SoftShuffle(a, b, imm, quarters: false);

    private static Vector512<float> Lanes(Vector512<float> x, Func<float, float> f)
    {
        Span<float> v = stackalloc float[16];
        x.CopyTo(v);
        for (int i = 0; i < 16; i++) v[i] = f(v[i]);
        return Vector512.Create((ReadOnlySpan<float>)v);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector512<float> SoftScale(Vector512<float> p, Vector512<float> n)
    {
        Span<float> v = stackalloc float[16];
        for (int i = 0; i < 16; i++)
        {
            float e = MathF.Floor(n.GetElement(i)), x = p.GetElement(i);
            // exact in double (a float times a power of two in double's range), then one rounding to float
            v[i] = float.IsNaN(e) ? float.NaN : (float)Math.ScaleB(x, (int)Math.Clamp(e, -2000f, 2000f));
        }
        return Vector512.Create((ReadOnlySpan<float>)v);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector512<float> SoftPermute(Vector512<float> lo, Vector512<int> idx, Vector512<float> hi)
    {
        Span<float> v = stackalloc float[16];
        for (int i = 0; i < 16; i++)
        {
            int j = idx.GetElement(i) & 31;
            v[i] = j < 16 ? lo.GetElement(j) : hi.GetElement(j - 16);
        }
        return Vector512.Create((ReadOnlySpan<float>)v);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector512<float> SoftShuffle(Vector512<float> a, Vector512<float> b, byte imm, bool quarters)
    {
        Span<float> v = stackalloc float[16];
        for (int i = 0; i < 16; i++)
        {
            // quarters: 128-bit lane i/4 comes from lane sel of a (lanes 0, 1) or b (lanes 2, 3), element i mod 4 kept;
            // else: within each 128-bit lane, element i mod 4 is element sel of a's (elements 0, 1) or b's (2, 3) lane
            int slot = quarters ? i / 4 : i % 4, sel = (imm >> (2 * slot)) & 3;
            var src = slot < 2 ? a : b;
            v[i] = quarters ? src.GetElement(4 * sel + i % 4) : src.GetElement(i / 4 * 4 + sel);
        }
        return Vector512.Create((ReadOnlySpan<float>)v);
    }
}
