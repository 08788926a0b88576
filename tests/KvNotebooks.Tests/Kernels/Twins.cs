using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

/// <summary>
/// Helpers of the tests that hold each AVX2 kernel to its AVX-512 twin bit for bit. Where the machine lacks AVX-512,
/// the AVX-512 kernels still run: .NET executes Vector512 code in software (per lane the same IEEE operations,
/// fused multiply-adds included; the few Avx512F instructions the kernels use go through
/// <c>Kernels/Avx512Ops.cs</c>, which does in software what the instruction does), so the very code an AVX-512
/// machine runs is compared with its twin. Each test also checks a scalar emulation of the AVX-512 operation order
/// (MathF.FusedMultiplyAdd chains) and that its data tells orders apart.
/// </summary>
internal static class Twins
{
    /// <summary>Whether this machine can run the AVX2 kernels (and so both tiers).</summary>
    public static bool CanRun => Simd.Machine >= SimdTier.Avx2;

    /// <summary>A context that runs the kernels of <paramref name="tier"/>.</summary>
    public static ComputeContext Context(SimdTier tier, int threads = 1) => new(threads) { ForceTier = tier };

    /// <summary>Values in ±[2⁻⁸, 1) with varied exponents: sums of them round differently in a different order.</summary>
    public static float[] Rand(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = scale * (float)((rng.NextDouble() + 0.5) * Math.Pow(2, -rng.Next(0, 8)) * (rng.Next(2) == 0 ? -1 : 1));
        return v;
    }

    /// <summary>Asserts the same bits everywhere (NaN payloads included), naming the first difference.</summary>
    public static void SameBits(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, expected {expected[i]:R} (bits {BitConverter.SingleToInt32Bits(actual[i]):X8} vs {BitConverter.SingleToInt32Bits(expected[i]):X8})");
    }

    /// <summary>How many elements differ in their bits.</summary>
    public static int Differing(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int n = 0;
        for (int i = 0; i < a.Length; i++)
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) n++;
        return n;
    }
}
