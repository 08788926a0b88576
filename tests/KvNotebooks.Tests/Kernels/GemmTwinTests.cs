using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

/// <summary>
/// The AVX2 GEMM kernels (<see cref="MicroKernel32Avx2"/>, and through them <see cref="PackedWeight"/> and
/// <see cref="Gemm"/>'s packed paths) give the bits of their AVX-512 twins (run in software where the machine lacks
/// AVX-512, see <see cref="Twins"/>) and of a scalar emulation of the AVX-512 order: per element of C and k-block,
/// acc = fma(a, b, acc) over k in order from +0 (the one-row kernel: even and odd k in two chains, then their sum),
/// then C (+)= acc.
/// </summary>
public unsafe class GemmTwinTests
{
    /// <summary>Runs one kernel (the AVX-512 one or its twin) on A (or A transposed), a panel and C.</summary>
    private delegate void KernelRun(float* a, float* at, float* panel, float* c, int k, bool avx512);

    [Theory]
    [InlineData(1, 32, false)]
    [InlineData(7, 20, true)]      // odd k (the one-row kernel's last step), a partial panel
    [InlineData(128, 32, true)]
    [InlineData(255, 17, false)]   // 17 columns: the second half of the panel holds one
    [InlineData(256, 16, true)]    // 16 columns: the AVX2 kernels skip the second half
    public void MicroKernelsGiveTheAvx512Bits(int k, int cols, bool accumulate)
    {
        if (!Twins.CanRun) return;
        const int lda = 260, ldc = 40, ldt = 9;
        var a = Twins.Rand(6 * lda, 1);
        var at = Twins.Rand(k * ldt, 2);                 // A read transposed: row r's kk-th value at at[kk·ldt + r]
        var panel = Twins.Rand(k * 32, 3);
        var init = Twins.Rand(6 * ldc, 4);
        float A(int r, int kk) => a[r * lda + kk];
        float AT(int r, int kk) => at[kk * ldt + r];
        float B(int kk, int j) => panel[kk * 32 + j];

        Check("6x32", 6, A, false, (pa, pat, pb, pc, k2, a512) =>
        {
            if (a512) MicroKernel32.Kernel6x32(pa, lda, k2, pb, pc, ldc, cols, accumulate);
            else MicroKernel32Avx2.Kernel6x32(pa, lda, k2, pb, pc, ldc, cols, accumulate);
        });
        Check("6x32T", 6, AT, false, (pa, pat, pb, pc, k2, a512) =>
        {
            if (a512) MicroKernel32.Kernel6x32T(pat, ldt, k2, pb, pc, ldc, cols, accumulate);
            else MicroKernel32Avx2.Kernel6x32T(pat, ldt, k2, pb, pc, ldc, cols, accumulate);
        });
        Check("2x32", 2, A, false, (pa, pat, pb, pc, k2, a512) =>
        {
            if (a512) MicroKernel32.Kernel2x32(pa, lda, 1, k2, pb, pc, ldc, cols, accumulate);
            else MicroKernel32Avx2.Kernel2x32(pa, lda, 1, k2, pb, pc, ldc, cols, accumulate);
        });
        Check("2x32 (A transposed)", 2, AT, false, (pa, pat, pb, pc, k2, a512) =>
        {
            if (a512) MicroKernel32.Kernel2x32(pat, 1, ldt, k2, pb, pc, ldc, cols, accumulate);
            else MicroKernel32Avx2.Kernel2x32(pat, 1, ldt, k2, pb, pc, ldc, cols, accumulate);
        });
        Check("1x32", 1, A, true, (pa, pat, pb, pc, k2, a512) =>
        {
            if (a512) MicroKernel32.Kernel1x32(pa, 1, k2, pb, pc, cols, accumulate);
            else MicroKernel32Avx2.Kernel1x32(pa, 1, k2, pb, pc, cols, accumulate);
        });
        Check("1x32 (A transposed)", 1, AT, true, (pa, pat, pb, pc, k2, a512) =>
        {
            if (a512) MicroKernel32.Kernel1x32(pat, ldt, k2, pb, pc, cols, accumulate);
            else MicroKernel32Avx2.Kernel1x32(pat, ldt, k2, pb, pc, cols, accumulate);
        });

        void Check(string name, int rows, Func<int, int, float> arow, bool evenOdd, KernelRun run)
        {
            var expected = (float[])init.Clone();
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++)
                    expected[r * ldc + j] = Emulate.Element(expected[r * ldc + j], accumulate, 0, k, evenOdd, kk => arow(r, kk), kk => B(kk, j));
            foreach (bool a512 in new[] { true, false })
            {
                var c = (float[])init.Clone();
                fixed (float* pa = a, pat = at, pb = panel, pc = c) run(pa, pat, pb, pc, k, a512);
                Twins.SameBits(expected, c, $"{name} {(a512 ? "AVX-512" : "AVX2")} k={k} cols={cols} acc={accumulate}");
            }
        }
    }

    [Theory]
    [InlineData(1, 768, 256)]      // a decode row: the one-row kernel over 24 panels
    [InlineData(7, 33, 17)]        // 6 + 1 rows; a panel of one column
    [InlineData(8, 65, 300)]       // 6 + 2 rows; two k-blocks of 256
    [InlineData(96, 100, 256)]     // a row tile
    [InlineData(37, 256, 688)]     // the down product's k: three k-blocks
    public void PackedWeightGivesTheAvx512Bits(int m, int n, int k)
    {
        if (!Twins.CanRun) return;
        int lda = k + 3, ldc = n + 5;
        var w = Twins.Rand(n * k, 1); var a = Twins.Rand(m * lda, 2); var init = Twins.Rand(m * ldc, 3);
        foreach (bool acc in new[] { false, true })
        {
            var expected = (float[])init.Clone();
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    expected[i * ldc + j] = Emulate.Gemm(expected[i * ldc + j], acc, k, 256, Emulate.LastOfOddRows(i, 0, m),
                        kk => a[i * lda + kk], kk => w[j * k + kk]);
            foreach (var tier in new[] { SimdTier.Avx512, SimdTier.Avx2 })
            {
                PackedWeight packed;
                using (Twins.Context(tier).Enter()) packed = new PackedWeight(w, n, k);
                var c = (float[])init.Clone();
                packed.Multiply(a, lda, m, c, ldc, acc);
                Twins.SameBits(expected, c, $"{tier} m={m} n={n} k={k} acc={acc}");
            }
        }
    }

    [Theory]
    [InlineData(8, 33, 17, 1)]
    [InlineData(53, 65, 130, 1)]     // row chunks of 48 (the second one 5 rows: 2 + 2 + 1); k-blocks of 128
    [InlineData(130, 96, 257, 2)]    // big enough to run on two threads: the split must not change a bit
    public void PackedGemmsGiveTheAvx512Bits(int m, int n, int k, int threads)
    {
        if (!Twins.CanRun) return;
        var a = Twins.Rand(m * k, 1); var bt = Twins.Rand(n * k, 2); var init = Twins.Rand(m * n, 3);
        var b = new float[k * n];                                   // B [k × n] = btᵀ
        var at = new float[k * m];                                  // A stored [k × m] for TN
        for (int j = 0; j < n; j++) for (int p = 0; p < k; p++) b[p * n + j] = bt[j * k + p];
        for (int i = 0; i < m; i++) for (int p = 0; p < k; p++) at[p * m + i] = a[i * k + p];
        foreach (bool acc in new[] { false, true })
        {
            // NT and NN: row chunks of 48, k-blocks of 128; TN: every row in one run, k-blocks of 128
            var expected = (float[])init.Clone();
            var expectedTN = (float[])init.Clone();
            for (int i = 0; i < m; i++)
            {
                int r0 = i / 48 * 48, r1 = Math.Min(m, r0 + 48);
                for (int j = 0; j < n; j++)
                {
                    expected[i * n + j] = Emulate.Gemm(init[i * n + j], acc, k, 128, Emulate.LastOfOddRows(i, r0, r1), p => a[i * k + p], p => bt[j * k + p]);
                    expectedTN[i * n + j] = Emulate.Gemm(init[i * n + j], acc, k, 128, Emulate.LastOfOddRows(i, 0, m), p => a[i * k + p], p => bt[j * k + p]);
                }
            }
            foreach (var tier in new[] { SimdTier.Avx512, SimdTier.Avx2 })
            {
                using var scope = Twins.Context(tier, threads).Enter();
                var c = (float[])init.Clone();
                Gemm.MatMulNT(a, bt, c, m, n, k, acc);
                Twins.SameBits(expected, c, $"NT {tier} m={m} n={n} k={k} acc={acc}");
                c = (float[])init.Clone();
                Gemm.MatMulNN(a, b, c, m, n, k, acc);
                Twins.SameBits(expected, c, $"NN {tier} m={m} n={n} k={k} acc={acc}");
                c = (float[])init.Clone();
                Gemm.MatMulTN(at, b, c, m, n, k, acc);
                Twins.SameBits(expectedTN, c, $"TN {tier} m={m} n={n} k={k} acc={acc}");
            }
        }
    }

    /// <summary>The data above tells operation orders apart: the emulated AVX-512 order differs from an unfused
    /// sum and from the fused chain summed backwards in many elements, so "same bits" is a real check.</summary>
    [Fact]
    public void TheDataTellsOrdersApart()
    {
        const int m = 16, n = 40, k = 300;
        var a = Twins.Rand(m * k, 2); var w = Twins.Rand(n * k, 1);
        var fused = new float[m * n]; var unfused = new float[m * n]; var backwards = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                fused[i * n + j] = Emulate.Gemm(0, false, k, 256, false, p => a[i * k + p], p => w[j * k + p]);
                float s = 0, t = 0;
                for (int p = 0; p < k; p++) s += a[i * k + p] * w[j * k + p];
                for (int p = k - 1; p >= 0; p--) t = MathF.FusedMultiplyAdd(a[i * k + p], w[j * k + p], t);
                unfused[i * n + j] = s;
                backwards[i * n + j] = t;
            }
        Assert.True(Twins.Differing(fused, unfused) > m * n / 2, $"{Twins.Differing(fused, unfused)} of {m * n} differ from the unfused sum");
        Assert.True(Twins.Differing(fused, backwards) > m * n / 2, $"{Twins.Differing(fused, backwards)} of {m * n} differ from the backward chain");
    }
}

/// <summary>Scalar emulations of the AVX-512 kernels' operation order.</summary>
internal static class Emulate
{
    /// <summary>One element of C: per k-block of <paramref name="kc"/>, acc from +0 through fma(a, b, acc) over k in order
    /// (one-row kernel: even and odd k of the block in two chains, then even + odd), then C = C + acc (or acc when
    /// not accumulating and it is the first block).</summary>
    public static float Gemm(float c, bool accumulate, int k, int kc, bool evenOdd, Func<int, float> a, Func<int, float> b)
    {
        for (int k0 = 0; k0 < k; k0 += kc)
            c = Element(c, accumulate || k0 > 0, k0, Math.Min(kc, k - k0), evenOdd, a, b);
        return c;
    }

    /// <summary>One micro-kernel call's effect on one element: k values from k0.</summary>
    public static float Element(float c, bool accumulate, int k0, int k, bool evenOdd, Func<int, float> a, Func<int, float> b)
    {
        float even = 0, odd = 0;
        for (int kk = 0; kk < k; kk++)
        {
            if (evenOdd && kk % 2 == 1) odd = MathF.FusedMultiplyAdd(a(k0 + kk), b(k0 + kk), odd);
            else even = MathF.FusedMultiplyAdd(a(k0 + kk), b(k0 + kk), even);
        }
        float v = evenOdd ? even + odd : even;
        return accumulate ? c + v : v;
    }

    /// <summary>Whether row i of rows [r0, r1) goes to the one-row kernel: six rows at a time, then two, then one.</summary>
    public static bool LastOfOddRows(int i, int r0, int r1) => i == r1 - 1 && (r1 - r0) % 6 % 2 == 1;

    /// <summary>VectorMath.Exp2's operations on one lane: clamp at −150, round to nearest even, the polynomial by
    /// FMAs, then vscalefps (exact in double, one rounding to float).</summary>
    public static float Exp2(float x)
    {
        x = MathF.Max(x, -150f);
        float n = MathF.Round(x), f = x - n, p = 1.5461444855e-04f;
        foreach (float c in new[] { 1.3400427997e-03f, 9.6180569381e-03f, 5.5503271520e-02f, 2.4022650719e-01f, 6.9314718246e-01f, 1f })
            p = MathF.FusedMultiplyAdd(p, f, c);
        return (float)Math.ScaleB(p, (int)Math.Min(n, 1000f));
    }

    /// <summary>Vector512.Sum's order, on AVX-512 (the JIT's code, read in a NativeAOT build for x86-64-v4 of .NET
    /// 10.0.12) and in software alike: the sum of lanes 0–7 plus the sum of lanes 8–15, each as <see cref="Sum8"/>.</summary>
    public static float Sum16(ReadOnlySpan<float> v) => Sum8(v[..8]) + Sum8(v[8..]);

    /// <summary>Vector256.Sum's order: (sum of lanes 0–3) + (sum of lanes 4–7), each (v0 + v1) + (v2 + v3).</summary>
    public static float Sum8(ReadOnlySpan<float> v) => ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
