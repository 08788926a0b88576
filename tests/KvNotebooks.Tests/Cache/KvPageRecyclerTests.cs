using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Cache;

/// <summary>A disposed cache's pages serve the next cache of the same shape, and what they held before
/// never leaks into a later run. Each test owns its recycler (nothing is process-wide).</summary>
public class KvPageRecyclerTests
{
    private static void Fill(KvCache cache, int entries, float value)
    {
        int hd = cache.HeadDim;
        var k = Enumerable.Repeat(value, entries * hd).ToArray();
        var pos = Enumerable.Range(0, entries).ToArray();
        for (int l = 0; l < cache.NumLayers; l++)
            for (int h = 0; h < cache.NumKvHeads; h++) cache[l, h].Append(k, k, 0, hd, pos);
    }

    [Fact]
    public void A_disposed_cache_hands_its_pages_to_the_next_one()
    {
        var recycler = new KvPageRecycler();
        var first = new KvCache(2, 2, headDim: 5, pageSize: 7, recycler: recycler);
        Fill(first, 20, 1f);   // 3 pages per head, 12 in all
        var pages = Enumerable.Range(0, 2).SelectMany(l => Enumerable.Range(0, 2).SelectMany(h =>
            Enumerable.Range(0, first[l, h].PageCount).Select(p => first[l, h].Page(p)))).ToHashSet();
        Assert.Equal(12, pages.Count);
        first.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Fill(first, 1, 0f));

        var second = new KvCache(2, 2, headDim: 5, pageSize: 7, recycler: recycler);
        Fill(second, 20, 2f);
        int reused = Enumerable.Range(0, 2).Sum(l => Enumerable.Range(0, 2).Sum(h =>
            Enumerable.Range(0, second[l, h].PageCount).Count(p => pages.Contains(second[l, h].Page(p)))));
        Assert.Equal(12, reused);
        Assert.Equal(12, second.Pool.PagesReserved);   // reserved by this cache, though not freshly allocated
        Assert.All(Enumerable.Range(0, 20), i => Assert.Equal(2f, second[1, 1].Key(i)[4]));
        second.Dispose();
        second.Dispose();   // twice is harmless
    }

    [Fact]
    public void The_recycler_keeps_no_more_than_its_capacity()
    {
        var recycler = new KvPageRecycler(capacityBytes: 2 * 308);
        var cache = new KvCache(1, 1, headDim: 3, pageSize: 11, recycler: recycler);
        Fill(cache, 11 * 4, 1f);   // 4 pages of 11·(2·3·4 + 4) = 308 bytes
        cache.Dispose();
        Assert.Equal(2 * 308, recycler.Bytes);   // two of the four pages kept, the rest left to the collector
        var next = new KvCache(1, 1, headDim: 3, pageSize: 11, recycler: recycler);
        Fill(next, 11 * 4, 2f);
        Assert.Equal(0, recycler.Bytes);         // both served the next cache
    }

    [Fact]
    public void A_session_on_recycled_pages_gives_the_logits_of_a_fresh_one()
    {
        var c = new LlamaConfig { VocabSize = 37, HiddenSize = 24, IntermediateSize = 40, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, HeadDim = 6 };
        var model = new LlamaModel(LlamaWeights.Random(c, seed: 3), new ComputeContext(2));
        var rng = new Random(5);
        int[] promptA = Enumerable.Range(0, 45).Select(_ => rng.Next(37)).ToArray();
        int[] promptB = Enumerable.Range(0, 30).Select(_ => rng.Next(37)).ToArray();
        float[] Run(int[] prompt, bool recycleFirst)
        {
            if (recycleFirst)
                using (var a = new Session(model, new Streaming(2, 9), chunking: 8, pageSize: 13)) a.Prefill(promptA);
            using var s = new Session(model, new Streaming(2, 9), chunking: 8, pageSize: 13);
            var all = new float[prompt.Length * 37];
            s.Prefill(prompt, all);
            s.Decode(1);
            return [.. all, .. s.LastLogits];
        }
        model.Compute.Pages.Clear();
        var fresh = Run(promptB, recycleFirst: false);
        var recycled = Run(promptB, recycleFirst: true);
        Assert.Equal(fresh, recycled);
    }
}
