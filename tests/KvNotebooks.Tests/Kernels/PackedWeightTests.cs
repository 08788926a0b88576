using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

/// <summary>The inference GEMM on weights packed once (<see cref="PackedWeight"/>) against a naive loop.</summary>
public class PackedWeightTests
{
    private static float[] Rand(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 768, 256)]     // a decode row
    [InlineData(7, 33, 17)]       // 6-row kernel + 1 row; a partial panel
    [InlineData(8, 65, 130)]      // 6 + 2 rows; k across two blocks of 128
    [InlineData(96, 1376, 256)]   // a row tile of the gate/up product
    [InlineData(37, 256, 688)]
    public void MultiplyMatchesNaive(int m, int n, int k)
    {
        int lda = k + 3, ldc = n + 5;
        var w = Rand(n * k, 1); var a = Rand(m * lda, 2); var init = Rand(m * ldc, 3);
        foreach (var (portable, acc) in new[] { (false, false), (false, true), (true, false), (true, true) })
        {
            PackedWeight packed;
            using (new ComputeContext(1, portable).Enter()) packed = new PackedWeight(w, n, k);
            var c = (float[])init.Clone();
            packed.Multiply(a, lda, m, c, ldc, acc);
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    double s = acc ? init[i * ldc + j] : 0;
                    for (int p = 0; p < k; p++) s += (double)a[i * lda + p] * w[j * k + p];
                    Assert.True(Math.Abs(s - c[i * ldc + j]) <= 1e-4 * Math.Sqrt(k), $"[{i},{j}] m={m} n={n} k={k} acc={acc} portable={portable}: {s} vs {c[i * ldc + j]}");
                }
                for (int j = n; j < ldc; j++) Assert.Equal(init[i * ldc + j], c[i * ldc + j]);   // columns past n untouched
            }
        }
    }
}
