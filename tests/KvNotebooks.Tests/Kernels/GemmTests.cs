using KvNotebooks.Kernels;
using Xunit;

namespace KvNotebooks.Tests.Kernels;

public class GemmTests
{
    public static IEnumerable<object[]> Sizes()
    {
        int[] s = { 1, 2, 3, 7, 17, 33, 65, 130 };
        foreach (int m in new[] { 1, 4, 7, 65, 130 })
            foreach (int n in new[] { 1, 3, 17, 33 })
                foreach (int k in new[] { 1, 15, 16, 33, 257 })
                    yield return new object[] { m, n, k };
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void MatMulNT_MatchesNaive(int m, int n, int k)
    {
        var rng = new Random(m * 1000003 + n * 1009 + k);
        var a = new float[m * k]; var b = new float[n * k];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        for (int i = 0; i < b.Length; i++) b[i] = (float)(rng.NextDouble() * 2 - 1);
        {
            foreach (int threads in new[] { 1, 2 })
                foreach (bool acc in new[] { false, true })
                {
                    using var scope = new ComputeContext(threads).Enter();
                    var c = new float[m * n];
                    for (int i = 0; i < c.Length; i++) c[i] = 0.5f;
                    Gemm.MatMulNT(a, b, c, m, n, k, acc);
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                        {
                            double s = acc ? 0.5 : 0, mag = 0;
                            for (int p = 0; p < k; p++) { s += (double)a[i * k + p] * b[j * k + p]; mag += Math.Abs((double)a[i * k + p] * b[j * k + p]); }
                            Assert.True(Math.Abs(c[i * n + j] - s) <= 1e-4 * (mag + 1), $"({i},{j}) {c[i * n + j]} vs {s}");
                        }
                }
        }
    }
}
