using System.Runtime.Intrinsics;
using KvNotebooks.Cache;
using KvNotebooks.Kernels;
using KvNotebooks.Tests.Torch;

namespace KvNotebooks.Tests.Kernels;

/// <summary>
/// The fused pre-fill kernel (<see cref="PagedFlashAttention"/>, head size 32) and the paths it replaces, against
/// LibTorch's scaled_dot_product_attention in fp64: odd row counts, earlier entries before the chunk (each KV head
/// its own count, as after per-head eviction), GQA and MQA, pages that do not divide the counts, pages reused
/// after eviction (stale NaN past the end must not leak), scores that keep growing (the running max rises
/// tile after tile), strided Q/O, 1 and 2 threads, AVX-512 and portable dispatch.
/// </summary>
public class PagedFlashAttentionTests
{
    internal static float[] Rand(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
    }

    /// <summary>Builds one layer's cache: KV head g holds prefix[g] earlier entries then the rows' own entries.
    /// With <paramref name="stalePages"/>, every page first held NaN entries that were then evicted.</summary>
    internal static (KvCache cache, float[][] keys, float[][] values) Cache(int rows, int[] prefix, int hd, int pageSize, int seed,
        bool stalePages = false, float keyGrowth = 0f)
    {
        int kvHeads = prefix.Length;
        var cache = new KvCache(1, kvHeads, hd, pageSize);
        var keys = new float[kvHeads][];
        var values = new float[kvHeads][];
        for (int g = 0; g < kvHeads; g++)
        {
            int total = prefix[g] + rows;
            var head = cache[0, g];
            if (stalePages)
            {
                int stale = total + 2 * pageSize;
                var nan = Enumerable.Repeat(float.NaN, stale * hd).ToArray();
                head.Append(nan, nan, 0, hd, new int[stale]);
            }
            head.Clear();
            keys[g] = Rand(total * hd, seed + 10 * g);
            values[g] = Rand(total * hd, seed + 10 * g + 1);
            // growing keys make later scores larger: the running max keeps rising
            for (int j = 0; j < total; j++)
                for (int d = 0; d < hd; d++) keys[g][j * hd + d] *= 1 + keyGrowth * j;
            head.Append(keys[g], values[g], 0, hd, Enumerable.Range(0, total).ToArray());
        }
        return (cache, keys, values);
    }

    /// <summary>Asserts o equals LibTorch's <c>scaled_dot_product_attention</c> in fp64: query row i of the heads of KV
    /// head g sees that head's first prefix[g] + i + 1 entries (the rows' own entries follow the prefix).</summary>
    internal static void Check(float[] q, int ldq, float[] o, int ldo, int rows, int heads, int[] prefix, int hd,
                              float[][] keys, float[][] values, float scale, string what)
    {
        KvNotebooks.Torch.TorchRuntime.Require();
        using var scope = TorchSharp.torch.NewDisposeScope();
        int group = heads / prefix.Length;
        var qs = TorchTensors.F64(q, rows, ldq)[.., ..(heads * hd)].reshape(rows, heads, hd).transpose(0, 1);   // [heads × rows × hd]
        for (int g = 0; g < prefix.Length; g++)
        {
            int n = prefix[g] + rows;
            var k = TorchTensors.F64(keys[g], n, hd).unsqueeze(0);
            var v = TorchTensors.F64(values[g], n, hd).unsqueeze(0);
            // positions from arrays and a scalar held to the end (TorchSharp's implicit scalars are unreferenced temporaries)
            static TorchSharp.torch.Tensor Range(long from, long to) => TorchSharp.torch.tensor(Enumerable.Range((int)from, (int)(to - from)).Select(i => (long)i).ToArray());
            var visible = Range(0, n).unsqueeze(0).le(Range(prefix[g], n).unsqueeze(1));                                   // [rows × n]
            var qg = qs[(g * group)..((g + 1) * group)];
            using var qScale = TorchSharp.ScalarExtensionMethods.ToScalar(scale * Math.Sqrt(hd));
            var expected = TorchSharp.torch.nn.functional.scaled_dot_product_attention(qg.unsqueeze(0).mul(qScale), k, v, visible)
                .squeeze(0).transpose(0, 1);                                                                            // [rows × group × hd]
            var got = new float[rows * group * hd];
            for (int i = 0; i < rows; i++) Array.Copy(o, i * ldo + g * group * hd, got, i * group * hd, group * hd);
            var e = TorchTensors.Doubles(expected);
            for (int x = 0; x < got.Length; x++)
                Assert.True(Math.Abs(e[x] - got[x]) <= 2e-5,
                    $"{what}: row {x / (group * hd)} head {g * group + x / hd % group} dim {x % hd}: torch {e[x]:G7}, ours {got[x]:G7}");
        }
    }

    public static TheoryData<int, int[], int, int, int> Shapes() => new()
    {
        // rows, prefix per KV head, query heads, page size, seed
        { 8, [0], 1, 64, 1 },                  // the smallest fused block
        { 64, [0, 0], 2, 64, 2 },              // exactly one 64-row block, one page
        { 77, [0, 0], 4, 64, 3 },              // GQA 2:1, a partial panel (13 rows past 64)
        { 150, [37, 37], 4, 64, 4 },           // a prefix that does not end on a tile
        { 130, [0], 8, 8, 5 },                 // MQA, 8-entry pages (blocks of one tile)
        { 100, [200, 5, 64], 6, 24, 6 },       // KV heads of different lengths, pages of 24
        { 33, [1000], 2, 128, 7 },             // a short chunk after a long prefix, 128-entry pages (two blocks each)
        { 257, [3, 0], 4, 16, 8 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FusedKernelMatchesTorch(int rows, int[] prefix, int heads, int pageSize, int seed)
    {
        const int hd = 32;
        var (cache, keys, values) = Cache(rows, prefix, hd, pageSize, seed, stalePages: seed % 2 == 0);
        var q = Rand(rows * heads * hd, seed + 100, 3f);
        float scale = 1f / MathF.Sqrt(hd);
        foreach (var (threads, portable) in new[] { (1, false), (2, false), (1, true), (2, true) })
        {
            var o = new float[rows * heads * hd];
            Run(threads, portable, () => Attention.Layer(q, rows, heads, cache.Layer(0), scale, o));
            Check(q, heads * hd, o, heads * hd, rows, heads, prefix, hd, keys, values, scale, $"threads {threads} portable {portable}");
        }
    }

    [Fact]
    public void FusedKernelFollowsARisingMaxAndLargeScores()
    {
        const int hd = 32, rows = 200, heads = 2;
        int[] prefix = [70];
        var (cache, keys, values) = Cache(rows, prefix, hd, 64, 11, keyGrowth: 0.02f);
        var q = Rand(rows * heads * hd, 12, 4f);
        float scale = 1f / MathF.Sqrt(hd);
        var o = new float[rows * heads * hd];
        Run(1, false, () => Attention.Layer(q, rows, heads, cache.Layer(0), scale, o));
        Check(q, heads * hd, o, heads * hd, rows, heads, prefix, hd, keys, values, scale, "rising max");
    }

    [Fact]
    public void StridedQueriesAndOutputsAreReadAndWrittenInPlace()
    {
        const int hd = 32, rows = 70, heads = 4, ldq = heads * hd + 2 * 2 * hd, ldo = heads * hd + 16;
        int[] prefix = [5, 9];
        var (cache, keys, values) = Cache(rows, prefix, hd, 64, 21);
        var q = Rand(rows * ldq, 22, 2f);
        float scale = 1f / MathF.Sqrt(hd);
        foreach (bool portable in new[] { false, true })
        {
            var o = Enumerable.Repeat(7f, rows * ldo).ToArray();
            Run(2, portable, () => Attention.Layer(q, ldq, rows, heads, cache.Layer(0), scale, o, ldo));
            Check(q, ldq, o, ldo, rows, heads, prefix, hd, keys, values, scale, $"strided, portable {portable}");
            for (int i = 0; i < rows; i++)
                for (int c = heads * hd; c < ldo; c++) Assert.Equal(7f, o[i * ldo + c]);   // padding columns untouched
        }
    }

    [Fact]
    public void FusedKernelIsUsedForHeadSize32OnAvx512OrAvx2()
    {
        Assert.Equal(Simd.Tier != SimdTier.Portable, PagedFlashAttention.Supports(32, 64));
        Run(1, portable: true, () => Assert.False(PagedFlashAttention.Supports(32, 64)));
        Assert.False(PagedFlashAttention.Supports(32, 12));   // tiles of 8 keys must not cross a page
        Assert.False(PagedFlashAttention.Supports(64, 64));
    }

    internal static void Run(int threads, bool portable, Action body)
    {
        using var scope = new ComputeContext(threads, portable).Enter();
        body();
    }
}
