using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

/// <summary>
/// The AVX2 twins of the element-wise AVX-512 code — <see cref="VectorMath.Exp2(Vector256{float})"/>, vscalefps as
/// <see cref="VectorMath.Scale"/>, the inference <see cref="RmsNorm"/> and <see cref="SwiGlu"/> rows — give the AVX-512
/// bits (see <see cref="Twins"/>) and those of a scalar emulation of the AVX-512 operations.
/// </summary>
public unsafe class ElementwiseTwinTests
{
    [Fact]
    public void Exp2GivesTheAvx512Bits()
    {
        if (!Twins.CanRun) return;
        var rng = new Random(5);
        var xs = new List<float> { 0f, -0f, 1f, -1f, 0.5f, -0.5f, 127.4f, 128f, 129f, 200f, -125f, -126f, -126.5f, -149f, -149.5f, -150f, -151f, -1000f, float.NegativeInfinity };
        for (int i = 0; i < 20_000; i++) xs.Add((float)(rng.NextDouble() * 290 - 160));       // subnormal results below −126 included
        for (int i = 0; i < 2_000; i++) xs.Add((float)(rng.NextDouble() - 0.5));
        while (xs.Count % 16 != 0) xs.Add(0f);
        var wide = new float[xs.Count]; var twin = new float[xs.Count]; var emulated = new float[xs.Count];
        for (int i = 0; i < xs.Count; i += 16)
        {
            var x = Vector512.Create(xs.GetRange(i, 16).ToArray());
            VectorMath.Exp2(x).CopyTo(wide, i);
            VectorMath.Exp2(x.GetLower()).CopyTo(twin, i);
            VectorMath.Exp2(x.GetUpper()).CopyTo(twin, i + 8);
        }
        for (int i = 0; i < xs.Count; i++) emulated[i] = Emulate.Exp2(xs[i]);
        Twins.SameBits(emulated, wide, "Exp2 AVX-512");
        Twins.SameBits(emulated, twin, "Exp2 AVX2");
        Assert.Contains(twin, v => v > 0 && float.IsSubnormal(v));
    }

    /// <summary>The twins sum lanes with Vector256.Sum where the AVX-512 kernels use Vector512.Sum: both follow the
    /// order <see cref="Emulate.Sum16"/> states (read off the JIT's AVX-512 code, and checked here on the machine's).</summary>
    [Fact]
    public void LaneSumsAddInTheOrderTheTwinsAssume()
    {
        var rng = new Random(7);
        for (int t = 0; t < 20_000; t++)
        {
            var v = Twins.Rand(16, rng.Next(), (float)Math.Pow(2, rng.Next(-10, 10)));
            Twins.SameBits([Emulate.Sum16(v)], [Vector512.Sum(Vector512.Create(v))], "Vector512.Sum");
            Twins.SameBits([Emulate.Sum8(v)], [Vector256.Sum(Vector256.Create(v))], "Vector256.Sum");
        }
    }

    [Fact]
    public void ScaleIsVscalefps()
    {
        if (!Twins.CanRun) return;
        var rng = new Random(6);
        for (int t = 0; t < 5_000; t++)
        {
            var p = new float[16]; var n = new float[16];
            for (int i = 0; i < 16; i++)
            {
                p[i] = (float)(0.5 + 1.5 * rng.NextDouble()) * (rng.Next(4) == 0 ? -1 : 1);   // [½, 2), either sign
                n[i] = t % 3 == 0 ? rng.Next(-300, 300) : (float)(rng.NextDouble() * 320 - 190);  // integers, and fractions (floored)
            }
            var pv = Vector512.Create(p); var nv = Vector512.Create(n);
            var wide = Avx512Ops.Scale(pv, nv);
            var twin = new float[16];
            VectorMath.Scale(pv.GetLower(), nv.GetLower()).CopyTo(twin, 0);
            VectorMath.Scale(pv.GetUpper(), nv.GetUpper()).CopyTo(twin, 8);
            var expected = new float[16];
            for (int i = 0; i < 16; i++) expected[i] = (float)Math.ScaleB(p[i], (int)MathF.Floor(n[i]));   // exact in double, rounded once
            var w = new float[16];
            wide.CopyTo(w);
            Twins.SameBits(expected, w, "vscalefps");
            Twins.SameBits(expected, twin, "VectorMath.Scale");
        }
    }

    [Theory]
    [InlineData(64, 3)]
    [InlineData(192, 5)]      // kvnb-small's hidden size
    public void RmsNormRowsGiveTheAvx512Bits(int d, int rows)
    {
        if (!Twins.CanRun) return;
        var x = Twins.Rand(rows * d, 1, 3f); var w = Twins.Rand(d, 2);
        var expected = new float[rows * d];
        for (int r = 0; r < rows; r++)
        {
            var acc = new float[64];                     // four 16-lane accumulators, lane l of accumulator q at 16q + l
            for (int i = 0; i < d; i += 64)
                for (int j = 0; j < 64; j++) acc[j] = MathF.FusedMultiplyAdd(x[r * d + i + j], x[r * d + i + j], acc[j]);
            var lanes = new float[16];
            for (int l = 0; l < 16; l++) lanes[l] = (acc[l] + acc[16 + l]) + (acc[32 + l] + acc[48 + l]);
            float inv = 1f / MathF.Sqrt(Emulate.Sum16(lanes) / d + 1e-5f);
            for (int j = 0; j < d; j++) expected[r * d + j] = x[r * d + j] * inv * w[j];
        }
        foreach (var tier in new[] { SimdTier.Avx512, SimdTier.Avx2 })
        {
            var y = new float[rows * d];
            using (Twins.Context(tier).Enter())
                fixed (float* px = x, pw = w, py = y) RmsNorm.Rows(px, d, pw, d, py, d, rows, 1e-5f);
            Twins.SameBits(expected, y, $"RMSNorm {tier} d={d}");
        }
    }

    [Theory]
    [InlineData(64)]
    [InlineData(40)]         // 16 + 16 by the vector loops, the last 8 by the portable code on both tiers
    public void SwiGluRowsGiveTheAvx512Bits(int ff)
    {
        if (!Twins.CanRun) return;
        const int rows = 3;
        var gu = Twins.Rand(rows * 2 * ff, 1, 40f);      // gates far into both tails of the sigmoid
        var expected = new float[rows * ff];
        foreach (var tier in new[] { SimdTier.Avx512, SimdTier.Avx2 })
        {
            var h = new float[rows * ff];
            using (Twins.Context(tier).Enter()) SwiGlu.Rows(gu, h, rows, ff);
            if (tier == SimdTier.Avx512)
            {
                h.CopyTo(expected, 0);
                for (int r = 0; r < rows; r++)
                    for (int i = 0; i < ff / 16 * 16; i++)
                    {
                        float g = gu[r * 2 * ff + i], u = gu[r * 2 * ff + ff + i];
                        expected[r * ff + i] = g * u / (1f + Emulate.Exp2(MathF.Min(g * -1.4426950408889634f, 128f)));
                    }
                Twins.SameBits(expected, h, "SwiGLU AVX-512 against the emulation");
            }
            else Twins.SameBits(expected, h, "SwiGLU AVX2");
        }
    }
}
