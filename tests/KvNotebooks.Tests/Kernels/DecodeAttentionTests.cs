using System.Runtime.Intrinsics;
using KvNotebooks.Cache;
using static KvNotebooks.Tests.Kernels.PagedFlashAttentionTests;

namespace KvNotebooks.Tests.Kernels;

/// <summary>
/// The few-rows path (<see cref="DecodeAttention"/>: one pass over a KV head for all its query vectors, long heads
/// split into ranges and merged) against LibTorch's scaled_dot_product_attention: decode rows and tiny chunks, GQA groups of 1–8 and MQA,
/// heads longer than a split, KV heads of different lengths, stale NaN past the end of reused pages, head sizes
/// 16–128, 1 and 2 threads, AVX-512 and portable dispatch.
/// </summary>
public class DecodeAttentionTests
{
    public static TheoryData<int, int[], int, int, int, int> Shapes() => new()
    {
        // rows, prefix per KV head, query heads, head size, page size, seed
        { 1, [0], 1, 32, 64, 1 },                 // the very first token
        { 1, [4095], 8, 32, 64, 2 },              // the bench model's decode step: 8 splits per head
        { 1, [700, 1300], 8, 32, 16, 3 },         // GQA 4:1, heads of different lengths, 16-entry pages
        { 3, [100], 8, 64, 32, 4 },               // MQA, three rows (a tiny chunk)
        { 7, [513, 5, 0, 40], 8, 16, 64, 5 },     // GQA 2:1, a head with only the rows' own entries
        { 2, [1500], 8, 128, 64, 6 },             // group of 8, head size 128
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void DecodeKernelMatchesTorch(int rows, int[] prefix, int heads, int hd, int pageSize, int seed)
    {
        var (cache, keys, values) = PagedFlashAttentionTests.Cache(rows, prefix, hd, pageSize, seed, stalePages: seed % 2 == 0);
        var q = Rand(rows * heads * hd, seed + 100, 3f);
        float scale = 1f / MathF.Sqrt(hd);
        foreach (var (threads, portable) in new[] { (1, false), (2, false), (2, true) })
        {
            var o = new float[rows * heads * hd];
            Run(threads, portable, () => Attention.Layer(q, rows, heads, cache.Layer(0), scale, o));
            Check(q, heads * hd, o, heads * hd, rows, heads, prefix, hd, keys, values, scale, $"threads {threads} portable {portable}");
        }
    }

    [Fact]
    public void SameBitsOnOneAndTwoThreads()
    {
        var (cache, _, _) = PagedFlashAttentionTests.Cache(1, [3000, 2000], 32, 64, 9);
        var q = Rand(4 * 32, 10, 3f);
        var one = new float[q.Length];
        var two = new float[q.Length];
        Run(1, false, () => Attention.Layer(q, 1, 4, cache.Layer(0), 0.2f, one));
        Run(2, false, () => Attention.Layer(q, 1, 4, cache.Layer(0), 0.2f, two));
        Assert.Equal(one, two);
    }

    [Fact]
    public void DecodeKernelIsUsedWhereItApplies()
    {
        Assert.Equal(Vector512.IsHardwareAccelerated, DecodeAttention.Supports(32, 64, 1, 4));
        Assert.False(DecodeAttention.Supports(32, 24, 1, 1));      // 16-key blocks must not cross a page
        Assert.False(DecodeAttention.Supports(40, 64, 1, 1));
        Assert.False(DecodeAttention.Supports(128, 64, 7, 16));    // too many query vectors for the stack
    }
}
