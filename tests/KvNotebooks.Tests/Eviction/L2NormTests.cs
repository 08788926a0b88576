using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Eviction;

/// <summary>
/// L2-norm eviction on keys whose norms are known, against the paper code's <c>L2KVCache.prune_cache</c> written out:
/// in every layer from <c>num_skip_layers</c> on, keep the last <c>num_local_tokens</c> (64) keys, and of the rest the
/// <c>max_capacity_total</c> with the lowest L2 norm (argsort ascending); the first layers are never pruned.
/// </summary>
public sealed class L2NormTests
{
    private const int Layers = 4, N = 200, Hd = 4, Window = 64;

    private static readonly LlamaConfig Config = new()
    {
        VocabSize = 8, HiddenSize = 8, IntermediateSize = 8, NumLayers = Layers, NumHeads = 1, NumKvHeads = 1, HeadDim = Hd,
    };

    /// <summary>A cache with one chunk of N keys per layer, key i of norm <paramref name="norm"/>(i) along one axis.</summary>
    private static KvCache Cache(Func<int, double> norm)
    {
        var cache = new KvCache(Layers, 1, Hd, pageSize: 16);
        var k = new float[N * Hd];
        var v = new float[N * Hd];
        for (int i = 0; i < N; i++) k[i * Hd + i % Hd] = (float)norm(i);
        var positions = Enumerable.Range(0, N).ToArray();
        for (int l = 0; l < Layers; l++) cache[l, 0].Append(k, v, 0, Hd, positions);
        return cache;
    }

    /// <summary>One pre-fill chunk of N rows through the method, layer by layer, as the session calls it.</summary>
    private static int[][] Evict(KvCache cache, IEvictionMethod method)
    {
        var step = new GenerationStep(Phase.Prefill, 0, 0, N, 0, true, N);
        for (int l = 0; l < Layers; l++) method.Evict(new LayerStep { Config = Config, Cache = cache, Layer = l, Step = step });
        method.EndStep(step, cache);
        return Enumerable.Range(0, Layers).Select(l => Enumerable.Range(0, cache[l, 0].Count).Select(cache[l, 0].Position).ToArray()).ToArray();
    }

    /// <summary>The paper code's prune, literally: local = the last 64; the rest sorted by norm, ascending, first M kept.</summary>
    private static int[] PaperPrune(Func<int, double> norm, int maxCapacityTotal) =>
        Enumerable.Range(N - Window, Window)
            .Concat(Enumerable.Range(0, N - Window).OrderBy(norm).Take(maxCapacityTotal))
            .Order().ToArray();

    [Theory]
    [InlineData(0, "code", 0.25, 150 - Window)]        // int(0.75 · 200) = 150 kept, window included
    [InlineData(2, "code", 0.25, 150 - Window)]
    [InlineData(2, "accounting", 0.5, 100)]            // round(0.5 · 200) = 100, plus the window
    [InlineData(1, "budget", 0, 50)]                   // an absolute budget of 64 + 50 is the paper's max_capacity_total = 50
    [InlineData(3, "code", 0.9, 20 - Window)]          // capacity 20 below the window: only the window is kept
    public void Keeps_the_recent_window_and_the_lowest_norm_keys_and_skips_the_first_layers(int skip, string rule, double p, int scored)
    {
        Func<int, double> norm = i => 1 + (i * 37 % N); // a permutation of 1 … 200: every norm distinct
        var budget = rule switch
        {
            "code" => EvictionBudget.Fraction(p),
            "accounting" => EvictionBudget.FractionPlusWindow(p),
            _ => EvictionBudget.Absolute(Window + scored),
        };
        var kept = Evict(Cache(norm), new ScheduledEviction(new L2Norm(skip), EvictionSchedule.Naive(budget, Window)));
        var expected = PaperPrune(norm, Math.Max(scored, 0));
        for (int l = 0; l < Layers; l++)
            Assert.Equal(l < skip ? Enumerable.Range(0, N).ToArray() : expected, kept[l]);
    }

    [Fact]
    public void A_first_token_with_the_largest_key_norm_is_the_first_evicted()
    {
        // As <bos> is in layers 2 and 3 of our model (docs/methods.md, "L2 norm"): evicting 1 % of a chunk already drops it.
        Func<int, double> norm = i => i == 0 ? 1000 : 1 + i % 17;
        var kept = Evict(Cache(norm), new ScheduledEviction(new L2Norm(0), EvictionSchedule.Naive(EvictionBudget.Fraction(0.01), Window)));
        Assert.All(kept, layer => Assert.DoesNotContain(0, layer));
        Assert.All(kept, layer => Assert.Equal(198, layer.Length)); // int(0.99 · 200)
        // Keeping the highest norms instead would keep it: the choice is the method's, not the schedule's.
        Assert.Equal(PaperPrune(norm, 198 - Window), kept[0]);
    }
}
