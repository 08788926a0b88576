using KvNotebooks.Cache;
using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

/// <summary>
/// The AVX2 attention kernels (<see cref="PagedFlashAttentionAvx2"/>'s tiles under <see cref="PagedFlashAttention"/>,
/// the decode twins in <see cref="DecodeAttention"/>) give every output bit of the AVX-512 kernels — the very
/// AVX-512 code, run through .NET's software Vector512 where the machine lacks AVX-512 (<see cref="Twins"/>) — over
/// the shapes the LibTorch tests use: odd row counts, prefixes, GQA and MQA, pages that do not divide the counts,
/// stale NaN pages, a running max that keeps rising (the lazy rescale's exact tiles), masked edge tiles.
/// </summary>
public class AttentionTwinTests
{
    [Theory]
    [MemberData(nameof(PagedFlashAttentionTests.Shapes), MemberType = typeof(PagedFlashAttentionTests))]
    public void PrefillGivesTheAvx512Bits(int rows, int[] prefix, int heads, int pageSize, int seed) =>
        Compare(rows, prefix, heads, pageSize, seed, keyGrowth: 0f, qScale: 3f);

    [Theory]
    [InlineData(200, 70, 0.02f, 4f)]      // scores grow along the keys: the max rises tile after tile (exact tiles)
    [InlineData(96, 0, 0.05f, 20f)]       // large scores: probabilities far below 2⁻¹²⁶ (subnormal, then 0)
    public void PrefillGivesTheAvx512BitsWhileTheMaxRises(int rows, int prefix, float keyGrowth, float qScale) =>
        Compare(rows, [prefix], 2, 64, 11, keyGrowth, qScale);

    [Theory]
    [InlineData(1, 300, 6, 2, 16)]        // a decode step, GQA 3:1
    [InlineData(1, 1500, 4, 4, 64)]       // three splits of 512 entries
    [InlineData(5, 40, 2, 1, 32)]         // a short chunk: rows see different counts
    [InlineData(7, 700, 8, 2, 48)]
    public void DecodeGivesTheAvx512Bits(int rows, int prefix, int heads, int kvHeads, int pageSize) =>
        Compare(rows, Enumerable.Repeat(prefix, kvHeads).Select((p, g) => p + 3 * g).ToArray(), heads, pageSize, rows + prefix, 0f, 3f);

    private static void Compare(int rows, int[] prefix, int heads, int pageSize, int seed, float keyGrowth, float qScale)
    {
        if (!Twins.CanRun) return;
        const int hd = 32;
        var (cache, _, _) = PagedFlashAttentionTests.Cache(rows, prefix, hd, pageSize, seed, stalePages: seed % 2 == 0, keyGrowth: keyGrowth);
        var q = PagedFlashAttentionTests.Rand(rows * heads * hd, seed + 100, qScale);
        float scale = 1f / MathF.Sqrt(hd);
        float[]? wide = null;
        foreach (var tier in new[] { SimdTier.Avx512, SimdTier.Avx2 })
            foreach (int threads in new[] { 1, 2 })
            {
                var o = new float[rows * heads * hd];
                using (Twins.Context(tier, threads).Enter()) Attention.Layer(q, rows, heads, cache.Layer(0), scale, o);
                Assert.DoesNotContain(o, float.IsNaN);
                if (wide == null) wide = o;
                else Twins.SameBits(wide, o, $"{tier}, {threads} thread(s), rows {rows}, prefix [{string.Join(",", prefix)}], heads {heads}, pages of {pageSize}");
            }
    }
}
