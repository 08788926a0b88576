using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tests.Inference;

namespace KvNotebooks.Tests.Footprint;

public class FootprintTests
{
    /// <summary>An independent per-row simulator: for each query row, the set of earlier tokens a head
    /// still holds, evicted by the rule's own description (not the accountant's formulas).</summary>
    private static (long entries, long[] peaks) Simulate(int n, int m, int chunk, Func<List<int>, int, List<int>> evictAfterChunk,
                                                         Func<List<int>, List<int>> evictAfterDecode)
    {
        var held = new List<int>();
        long entries = 0;
        var peaks = new List<long>();
        for (int start = 0; start < n; start += chunk)
        {
            int c = Math.Min(chunk, n - start);
            for (int i = 0; i < c; i++) entries += held.Count + i + 1;
            peaks.Add(held.Count + c);
            var chunkTokens = Enumerable.Range(start, c).ToList();
            held = evictAfterChunk(held, c).Concat(chunkTokens).ToList();
            held = evictAfterChunk(held, -1);
        }
        for (int a = n; a < n + m; a++)
        {
            entries += held.Count + 1;
            held.Add(a);
            if (a == n + m - 1) peaks.Add(held.Count);
            held = evictAfterDecode(held);
        }
        return (entries, peaks.ToArray());
    }

    private static List<int> SinkWindow(List<int> held, int sink, int window) =>
        held.Count <= sink + window ? held : held.Take(sink).Concat(held.Skip(held.Count - window)).ToList();

    [Fact]
    public void WorkedExampleIs26Of36()
    {
        // docs/footprint.md, the paper's Fig. 1: 8 tokens, each row keeps at most 4 entries (itself and 3 before).
        var r = KvFootprint.HeadMix(new ChunkPlan(8, 1), m: 0, streamingHeads: 1, totalHeads: 1, sink: 0, window: 3);
        Assert.Equal(26, r.Entries);
        Assert.Equal(36, r.FullEntries);
        Assert.Equal(0.722, r.Footprint, 3);
    }

    [Fact]
    public void StreamingMatchesBruteForce()
    {
        var rng = new Random(1);
        for (int trial = 0; trial < 300; trial++)
        {
            int n = rng.Next(1, 60), m = rng.Next(0, 12), c = rng.Next(1, 70), S = rng.Next(0, 6), W = rng.Next(0, 12);
            var (entries, peaks) = Simulate(n, m, c, (h, x) => x < 0 ? SinkWindow(h, S, W) : h, h => SinkWindow(h, S, W));
            var a = HeadAccount.Streaming(new ChunkPlan(n, c), m, S, W);
            Assert.True(entries == a.Entries, $"n={n} m={m} C={c} S={S} W={W}: simulated {entries}, accountant {a.Entries}");
            Assert.Equal(peaks, a.PeakPoints);
        }
    }

    [Fact]
    public void TokenEvictionMatchesBruteForce()
    {
        var rng = new Random(2);
        for (int trial = 0; trial < 300; trial++)
        {
            int n = rng.Next(1, 80), m = rng.Next(0, 10), c = rng.Next(1, 90), w0 = rng.Next(0, 8);
            double p = rng.Next(0, 11) / 10.0;
            // Each chunk keeps round((1−p)·c) + w0 of its own tokens (at most c); earlier keeps stay.
            long entries = 0; long P = 0; var peaks = new List<long>();
            for (int start = 0; start < n; start += c)
            {
                int cc = Math.Min(c, n - start);
                for (int i = 0; i < cc; i++) entries += P + i + 1;
                peaks.Add(P + cc);
                P += Math.Min((long)Math.Round((1 - p) * cc, MidpointRounding.ToEven) + w0, cc);
            }
            for (int t = 1; t <= m; t++) entries += P + t;
            if (m > 0) peaks.Add(P + m);
            var a = HeadAccount.Global(new ChunkPlan(n, c), m, p, w0);
            Assert.Equal(entries, a.Entries);
            Assert.Equal(peaks.ToArray(), a.PeakPoints);
        }
    }

    [Fact]
    public void NoEvictionIsFullAttention()
    {
        var plan = new ChunkPlan(1000, 128);
        Assert.Equal(1.0, KvFootprint.TokenEviction(plan, 37, 0.0, 0).Footprint);
        Assert.Equal(1.0, KvFootprint.Full(plan, 37).Footprint);
        Assert.Equal(1.0, KvFootprint.Full(plan, 37).PeakKv);
        Assert.Equal(1.0, KvFootprint.Duo(plan, 37, 0.0).Footprint, 12);
    }

    [Fact]
    public void PythonRoundingIsHalfToEven()
    {
        // keep 0.5 of a 5-token chunk: round(2.5) = 2 in Python, then + w0 = 0.
        var a = HeadAccount.Global(new ChunkPlan(10, 5), 0, 0.5, 0);
        Assert.Equal([5L, 2 + 5], a.PeakPoints);
    }

    [Fact]
    public void LocretPlanPutsTheLastTokensAlone()
    {
        Assert.Equal([4, 4, 2, 3], ChunkPlan.Locret(13, 4, 3).Sizes);
        Assert.Equal([5], ChunkPlan.Locret(5, 4, 100).Sizes);
        var r = KvFootprint.Locret(131072, 100, 32768, 0.9);
        Assert.InRange(r.Footprint, 0.2, 0.6);
    }

    [Fact]
    public void EveryMethodStaysAboveTheChunkFloor()
    {
        foreach (int c in new[] { 1000, 4096, 32768, 131072 })
        {
            double T = 131072 + 100;
            double Floor(ChunkPlan plan) => plan.Sizes.Sum(s => s * (s + 1.0) / 2) / (T * (T + 1) / 2);
            var plan = new ChunkPlan(131072, c);
            foreach (var r in new[] { KvFootprint.Duo(plan, 100, 1.0), KvFootprint.TokenEviction(plan, 100, 0.9) })
                Assert.True(r.Footprint >= Floor(plan), $"chunk {c}: footprint {r.Footprint} below floor {Floor(plan)}");
            // Locret pre-fills its last 100 tokens alone, so its floor is that of its own plan.
            var locretPlan = ChunkPlan.Locret(131072, c, 100);
            Assert.True(KvFootprint.Locret(131072, 100, c, 0.9).Footprint >= Floor(locretPlan));
        }
        // A single pre-fill pins post-fill eviction near 100%.
        Assert.True(KvFootprint.TokenEviction(new ChunkPlan(131072, 131072), 100, 0.9).Footprint > 0.99);
    }

    [Fact]
    public void BadInputsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChunkPlan(0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChunkPlan(10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => KvFootprint.Duo(new ChunkPlan(10, 4), 0, 1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => KvFootprint.TokenEviction(new ChunkPlan(10, 4), -1, 0.5));
        Assert.Throws<ArgumentException>(() => MethodSpec.Of("fastgen"));
    }

    [Theory]
    [InlineData(0.5, 0.9, 100)]   // all hold → "<"
    [InlineData(0.2, 0.5, 100)]
    public void CriticalFootprintCases(double lo, double hi, double full)
    {
        var below = CriticalFootprint.Find([(lo, 95), (hi, 99)], full);
        Assert.Equal(CriticalKind.Below, below.Kind);
        Assert.Equal($"<{lo * 100:F1}", below.ToString());
    }

    [Fact]
    public void CriticalFootprintInterpolatesAndBounds()
    {
        // Target 90 of 100: between (0.4, 80) and (0.6, 100) the line crosses 90 at 0.5.
        var r = CriticalFootprint.Find([(0.6, 100), (0.2, 10), (0.4, 80), (0.8, 100)], 100);
        Assert.Equal(CriticalKind.Exact, r.Kind);
        Assert.Equal(0.5, r.Value, 12);
        Assert.Equal("50.0", r.ToString());
        Assert.Equal((0.5, 90.0), r.Crossing);
        Assert.False(r.DipsAbove);
        var above = CriticalFootprint.Find([(0.5, 10), (0.93, 80)], 100);
        Assert.Equal(">93.0", above.ToString());
        Assert.Null(above.Crossing);
        Assert.Throws<ArgumentException>(() => CriticalFootprint.Find([], 100));
    }

    [Fact]
    public void The_critical_footprint_is_the_smallest_footprint_that_reaches_the_target_on_the_interpolated_curve()
    {
        // Uneven: the curve reaches 90 between 0.2 and 0.4, falls to 50 at 0.6 and recovers. The smallest footprint that
        // still scores ≥ 90 % of full attention is on the first rise: 0.2 + (90 − 60)/(95 − 60)·0.2.
        var r = CriticalFootprint.Find([(0.8, 96), (0.6, 50), (0.4, 95), (0.2, 60)], 100);
        Assert.Equal(CriticalKind.Exact, r.Kind);
        Assert.Equal(0.2 + 30.0 / 35 * 0.2, r.Value, 12);
        Assert.True(r.DipsAbove);
        Assert.Equal(90, r.Target, 12);
        // A point below the smallest that already holds: a bound, even if a larger footprint fails (the Summ case:
        // 32.5 % scores above full attention, 40 % below the target).
        var summ = CriticalFootprint.Find([(0.325, 101), (0.40, 80), (0.729, 95), (1.0, 100)], 100);
        Assert.Equal("<32.5", summ.ToString());
        Assert.True(summ.DipsAbove);
        // Exactly on the target counts as reaching it.
        Assert.Equal(0.5, CriticalFootprint.Find([(0.3, 10), (0.5, 90), (0.7, 10)], 100).Value, 12);
        Assert.Equal(CriticalKind.Exact, CriticalFootprint.Find([(0.3, 10), (0.5, 90), (0.7, 10)], 100).Kind);
    }

    [Fact]
    public void Critical_results_order_bounds_outside_the_values_they_bound()
    {
        var below = new CriticalFootprintResult(0.3, CriticalKind.Below);
        var atMin = new CriticalFootprintResult(0.3, CriticalKind.Exact);
        var mid = new CriticalFootprintResult(0.5, CriticalKind.Exact);
        var atMax = new CriticalFootprintResult(0.9, CriticalKind.Exact);
        var above = new CriticalFootprintResult(0.9, CriticalKind.Above);
        var shuffled = new[] { mid, above, atMin, below, atMax };
        Array.Sort(shuffled, CriticalFootprintResult.Compare);
        Assert.Equal([below, atMin, mid, atMax, above], shuffled);
    }

    /// <summary>Issue item 7: the engine's meter equals the accountant, integer for integer, for Full,
    /// Streaming and HeadMask over prompt lengths, chunk sizes, generation lengths, sinks and windows.</summary>
    [Fact]
    public void MeasuredEqualsAnalytic()
    {
        var c = TinyModels.Config() with { NumLayers = 2, NumKvHeads = 2 };
        var model = new LlamaModel(TinyModels.Weights(c, seed: 21));
        int heads = c.NumLayers * c.NumKvHeads;
        var rng = new Random(3);
        var masks = new[] { new bool[2, 2] { { true, false }, { false, false } }, new bool[2, 2] { { false, true }, { true, true } } };
        for (int trial = 0; trial < 40; trial++)
        {
            int n = rng.Next(1, 45), m = rng.Next(0, 7), chunk = rng.Next(1, 50), S = rng.Next(0, 4), W = rng.Next(0, 10);
            var prompt = TinyModels.Tokens(n, c.VocabSize, seed: trial);
            var plan = new ChunkPlan(n, chunk);
            var cases = new (IEvictionMethod method, int streaming)[]
            {
                (new FullAttention(), 0), (new Streaming(S, W), heads),
                (new HeadMask(masks[trial % 2], S, W), trial % 2 == 0 ? 3 : 1),
            };
            foreach (var (method, streaming) in cases)
            {
                var run = new Session(model, method, chunk, pageSize: 8).Run(prompt, m);
                var expected = KvFootprint.HeadMix(plan, m, streaming, heads, S, W);
                string what = $"{method.Name} n={n} m={m} C={chunk} S={S} W={W}";
                Assert.True(expected.Entries == run.Entries, $"{what}: entries measured {run.Entries}, analytic {expected.Entries}");
                Assert.True(expected.FullEntries == run.FullEntries, $"{what}: full entries");
                Assert.True(expected.PeakEntries == run.PeakEntries, $"{what}: peak measured {run.PeakEntries}, analytic {expected.PeakEntries}");
                Assert.Equal(expected.Footprint, run.Footprint, 12);
                Assert.Equal(expected.PeakKv, run.PeakKv, 12);
            }
        }
    }

    [Fact]
    public void DuoFractionalMixEqualsIntegerMixAtTheSameSparsity()
    {
        var plan = new ChunkPlan(5000, 1024);
        var duo = KvFootprint.Duo(plan, 50, 0.75, 16, 128);
        var mix = KvFootprint.HeadMix(plan, 50, 3, 4, 16, 128);
        Assert.Equal(mix.Footprint, duo.Footprint, 12);
        Assert.Equal(mix.PeakKv, duo.PeakKv, 12);
    }

    [Fact]
    public void PaperTable2UsesOurCriticalFootprintNotation()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "KvNotebooks.sln"))) root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repo root not found");
        var lines = File.ReadAllLines(Path.Combine(root, "data", "paper", "table2_critical_footprint.csv")).Skip(1).ToArray();
        Assert.Equal(32, lines.Length); // 4 methods × 8 categories
        foreach (var line in lines)
        {
            var f = line.Split(',');
            var kind = f[4] switch { "above" => CriticalKind.Above, "below" => CriticalKind.Below, _ => CriticalKind.Exact };
            var r = new CriticalFootprintResult(double.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture) / 100, kind);
            Assert.Equal(f[2], r.ToString());
        }
    }
}
