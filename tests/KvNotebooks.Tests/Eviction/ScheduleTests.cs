using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tests.Inference;

namespace KvNotebooks.Tests.Eviction;

/// <summary>Schedules: capacities, post-fill against a reference from full attention weights, single-chunk
/// equivalence, patched chunks leaving no trace, decode eviction, GQA storage.</summary>
public class ScheduleTests
{
    [Fact]
    public void CapacitiesFollowThePaperCode()
    {
        var naive = EvictionSchedule.Naive(EvictionBudget.Fraction(0.5));
        Assert.Equal(50, naive.Capacity(0, 100, 1000, 0));
        var patched = EvictionSchedule.Patched(EvictionBudget.Fraction(0.5));
        Assert.Equal(50 + 64, patched.Capacity(0, 100, 1000, 64));
        // Python's int() truncates: int((1 − 0.7)·100) = 30, int((1 − 0.9)·10) = int(0.999…) = 0.
        Assert.Equal(30, EvictionSchedule.Naive(EvictionBudget.Fraction(0.7)).Capacity(0, 100, 100, 0));
        Assert.Equal(0, EvictionSchedule.Naive(EvictionBudget.Fraction(0.9)).Capacity(0, 10, 10, 0));
        // Single pre-fill: max(int((1 − p)·n), 64) rounded up to a multiple of 64.
        Assert.Equal(512, EvictionSchedule.PostFill(EvictionBudget.Fraction(0.5)).Capacity(0, 1000, 1000, 0));
        Assert.Equal(64, EvictionSchedule.PostFill(EvictionBudget.Fraction(0.99)).Capacity(0, 1000, 1000, 0));
        // The accounting rule (docs/footprint.md): round((1 − p)·c) + w.
        Assert.Equal(50 + 64, EvictionSchedule.Naive(EvictionBudget.FractionPlusWindow(0.5)).Capacity(0, 100, 1000, 0));
        // An absolute budget splits over chunks in proportion to their length and sums exactly.
        var abs = EvictionSchedule.Naive(EvictionBudget.Absolute(300));
        var plan = new ChunkPlan(1000, 256);
        int start = 0, sum = 0;
        var shares = new List<int>();
        foreach (int c in plan.Sizes) { shares.Add(abs.Capacity(start, c, 1000, 0)); sum += shares[^1]; start += c; }
        Assert.Equal([77, 77, 76, 70], shares);
        Assert.Equal(300, sum);
        // SnapKV's keep rule: everything if the capacity reaches the candidates, only the window if it does not exceed it.
        Assert.Equal(100, new Compression(100, 64, 114, false).Kept);
        Assert.Equal(64, new Compression(100, 64, 30, false).Kept);
        Assert.Equal(80, new Compression(100, 64, 80, false).Kept);
        Assert.Equal(100 - 80 + 64, new Compression(100, 64, 80, DropWindow: true).Evicted);   // a patch leaves after scoring
        // Patched chunks keep int((1 − p)·c) of their own tokens (the patch is dropped); the final chunk is naive.
        var (kept, patch) = patched.KeptAfterChunks(new ChunkPlan(1000, 300));
        Assert.Equal([150L, 300, 450, 514], kept);
        Assert.Equal([64, 64, 64, 0], patch);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void ImpossibleFractionsAreRejected(double p)
    {
        var e = Assert.Throws<ArgumentException>(() => EvictionBudget.Fraction(p));
        Assert.Contains("[0, 1)", e.Message);
    }

    [Fact]
    public void ImpossibleSchedulesAreRejected()
    {
        Assert.Contains("below the always-kept observation window",
            Assert.Throws<ArgumentException>(() => EvictionSchedule.Naive(EvictionBudget.Absolute(10), window: 64).Validate()).Message);
        Assert.Throws<ArgumentException>(() => (EvictionSchedule.Naive(EvictionBudget.Fraction(0.5)) with { DecodeBudget = 100 }).Validate());
        Assert.Throws<ArgumentException>(() => EvictionSchedule.Naive(EvictionBudget.Fraction(0.5), window: 0).Validate());
        Assert.Throws<ArgumentException>(() => new ScheduledEviction(new L2Norm(), EvictionSchedule.Patched(EvictionBudget.Fraction(0.5))));
        Assert.Throws<ArgumentException>(() => new PyramidKV(beta: 0));
        Assert.Throws<ArgumentException>(() => new ZigZagKV(threshold: 0));
    }

    /// <summary>
    /// Post-fill eviction after a single pre-fill, against scores computed here in double precision from
    /// the full attention weights of a naive reference model: every head keeps the window plus a set of
    /// scored KVs that is a top-k set of the reference scores (up to float ties).
    /// </summary>
    [Theory]
    [InlineData("snapkv", false)]
    [InlineData("snapkv", true)]
    [InlineData("pyramidkv", false)]
    [InlineData("h2o", false)]
    [InlineData("h2o", true)]
    [InlineData("l2", false)]
    [InlineData("zigzag", false)]
    public void PostFillKeepsTheReferenceTopScores(string name, bool replicated)
    {
        int n = 44, w = 6, L = 3;
        var model = EvictionHarness.Model(L, kvHeads: 2, seed: 31, out var weights);
        var c = weights.Config;
        var prompt = TinyModels.Tokens(n, c.VocabSize, seed: 32);
        var schedule = EvictionSchedule.PostFill(EvictionBudget.Fraction(0.55), window: w) with { CapacityMultiple = 1 };
        var session = new Session(model, new ScheduledEviction(EvictionHarness.Scorer(name), schedule), storage: new KvStorage(replicated), pageSize: 4);
        session.Prefill(prompt);

        var qs = new double[L][][]; var ks = new double[L][][];
        ReferenceLlama.Logits(weights, prompt, (_, _, q, k) => k <= q, (l, q, k) => { qs[l] = q; ks[l] = k; });
        int stored = session.Cache.NumKvHeads, G = c.NumHeads / stored, hd = c.HeadDim, cap = schedule.Capacity(0, n, n, 0);
        Assert.Equal(replicated ? c.NumHeads : c.NumKvHeads, stored);
        Assert.Equal(19, cap);                                                  // int(0.45 · 44)
        var budgets = new int[L];
        var scorer = ((ScheduledEviction)session.Method).Scorer;
        scorer.LayerBudgets(new BudgetInput(cap, n, w, L), budgets);   // ZigZag: from the LMBAs it measured
        Assert.Equal(L * (cap - w), budgets.Sum());
        for (int l = 0; l < L; l++)
            for (int s = 0; s < stored; s++)
            {
                int kvHead = replicated ? s / c.GroupSize : s;
                var heads = replicated ? new[] { s } : Enumerable.Range(s * G, G).ToArray();
                double[] score = ReferenceScores(name, qs[l], ks[l], heads, kvHead, n, w, hd);
                var kept = Enumerable.Range(0, session.Cache[l, s].Count).Select(session.Cache[l, s].Position).ToArray();
                Assert.Equal(w + budgets[l], kept.Length);
                Assert.Equal(Enumerable.Range(n - w, w), kept[^w..]);                 // the window is always kept
                var keptScored = kept[..^w].ToHashSet();
                var evicted = Enumerable.Range(0, n - w).Where(i => !keptScored.Contains(i)).ToArray();
                if (keptScored.Count == 0 || evicted.Length == 0) continue;
                double worstKept = keptScored.Min(i => score[i]), bestEvicted = evicted.Max(i => score[i]);
                double tol = 1e-5 * score.Max(Math.Abs);
                Assert.True(worstKept >= bestEvicted - tol,
                    $"{name} layer {l} head {s}: kept a KV scoring {worstKept:G6} but evicted one scoring {bestEvicted:G6}");
            }
    }

    /// <summary>
    /// ZigZagKV: each layer's LMBA (fewest KVs reaching 90% of the window's attention mass, averaged over
    /// heads) from the reference model's full attention; budgets B_min + (B_avg − B_min)·L·u_l, u_l = LMBA_l / Σ LMBA,
    /// rounded so they sum to L·B_avg.
    /// </summary>
    [Fact]
    public void ZigZagBudgetsFollowLayerUncertainty()
    {
        int n = 60, w = 6, L = 4;
        var model = EvictionHarness.Model(L, kvHeads: 2, seed: 35, out var weights);
        var c = weights.Config;
        var prompt = TinyModels.Tokens(n, c.VocabSize, seed: 36);
        var schedule = EvictionSchedule.PostFill(EvictionBudget.Fraction(0.6), window: w) with { CapacityMultiple = 1 };
        var session = new Session(model, new ScheduledEviction(new ZigZagKV(threshold: 0.9, minFraction: 0.25), schedule), pageSize: 4);
        session.Prefill(prompt);
        var qs = new double[L][][]; var ks = new double[L][][];
        ReferenceLlama.Logits(weights, prompt, (_, _, q, k) => k <= q, (l, q, k) => { qs[l] = q; ks[l] = k; });
        var lmba = new double[L];
        for (int l = 0; l < L; l++)
            for (int g = 0; g < c.NumKvHeads; g++)
            {
                var mass = ReferenceScores("zigzag", qs[l], ks[l], [2 * g, 2 * g + 1], g, n, w, c.HeadDim).OrderDescending().ToArray();
                double total = mass.Sum(), acc = 0;
                int count = 0;
                while (acc < 0.9 * total) acc += mass[count++];
                lmba[l] += count / (double)c.NumKvHeads;
            }
        var measured = ((ZigZagKV)((ScheduledEviction)session.Method).Scorer).LayerLmba();
        for (int l = 0; l < L; l++) Assert.True(Math.Abs(lmba[l] - measured[l]) <= 0.5, $"layer {l}: LMBA {measured[l]}, reference {lmba[l]}");
        int cap = schedule.Capacity(0, n, n, 0), avg = cap - w;
        double bmin = 0.25 * avg;
        var budgets = Enumerable.Range(0, L).Select(l => session.Cache[l, 0].Count - w).ToArray();
        Assert.Equal(L * avg, budgets.Sum());
        for (int l = 0; l < L; l++)
        {
            double target = bmin + (avg - bmin) * L * measured[l] / measured.Sum();
            Assert.True(Math.Abs(budgets[l] - target) < 1, $"layer {l}: budget {budgets[l]}, target {target}");
            Assert.Equal(budgets[l], session.Cache[l, 1].Count - w);
        }
        Assert.True(budgets.Distinct().Count() > 1, "layers with different uncertainty get different budgets");
    }

    /// <summary>The methods' scores, from the definitions: SnapKV / PyramidKV pool the window's attention
    /// (kernel 5, zero padding); ZigZag sums it; H2O accumulates every prompt row's attention; L2 is −‖k‖.</summary>
    private static double[] ReferenceScores(string name, double[][] q, double[][] k, int[] heads, int g, int n, int w, int hd)
    {
        if (name == "l2") return Enumerable.Range(0, n - w).Select(i => -Math.Sqrt(Enumerable.Range(0, hd).Sum(d => k[i][g * hd + d] * k[i][g * hd + d]))).ToArray();
        var rows = name == "h2o" ? Enumerable.Range(0, n) : Enumerable.Range(n - w, w);
        var sum = new double[n];
        foreach (int h in heads)
            foreach (int t in rows)
            {
                var logits = Enumerable.Range(0, t + 1).Select(j => Enumerable.Range(0, hd).Sum(d => q[t][h * hd + d] * k[j][g * hd + d]) / Math.Sqrt(hd)).ToArray();
                double max = logits.Max(), z = logits.Sum(x => Math.Exp(x - max));
                for (int j = 0; j <= t; j++) sum[j] += Math.Exp(logits[j] - max) / z / heads.Length;
            }
        var scored = sum[..(n - w)];
        if (name is "h2o" or "zigzag") return scored;
        return Enumerable.Range(0, n - w).Select(i => Enumerable.Range(i - 2, 5).Where(j => j >= 0 && j < n - w).Sum(j => scored[j]) / 5).ToArray();
    }

    /// <summary>A chunked schedule whose only chunk is the whole prompt is post-fill eviction, exactly:
    /// same KVs kept in every head, same tokens generated, same measured footprint.</summary>
    [Theory]
    [InlineData("snapkv")]
    [InlineData("pyramidkv")]
    [InlineData("h2o")]
    [InlineData("l2skip")]
    [InlineData("zigzag")]
    public void SingleChunkChunkedEvictionEqualsPostFill(string name)
    {
        var model = EvictionHarness.Model(3, kvHeads: 2, seed: 41, out var weights);
        var prompt = TinyModels.Tokens(50, weights.Config.VocabSize, seed: 42);
        foreach (var budget in new[] { EvictionBudget.Absolute(20), EvictionBudget.Fraction(0.6) })
        {
            var post = new Session(model, new ScheduledEviction(EvictionHarness.Scorer(name),
                EvictionSchedule.PostFill(budget, window: 5) with { CapacityMultiple = 1 }), pageSize: 4);
            var postRun = post.Run(prompt, 6);
            foreach (var kind in new[] { ScheduleKind.Naive, ScheduleKind.Patched })
            {
                if (kind == ScheduleKind.Patched && name.StartsWith("l2")) continue;   // patching needs queries
                var chunked = new Session(model, new ScheduledEviction(EvictionHarness.Scorer(name),
                    new EvictionSchedule { Kind = kind, Budget = budget, Window = 5 }), chunking: 50, pageSize: 4);
                var run = chunked.Run(prompt, 6);
                Assert.Equal(EvictionHarness.Snapshot(post), EvictionHarness.Snapshot(chunked));
                Assert.Equal(postRun.Generated, run.Generated);
                Assert.Equal(postRun.Entries, run.Entries);
                Assert.Equal(postRun.PeakEntries, run.PeakEntries);
                Assert.Equal(postRun.PeakKvBytes, run.PeakKvBytes);
            }
            Assert.True(postRun.FinalEntries < 3 * 2 * 56, "something was evicted");
        }
    }

    /// <summary>
    /// Every row of the sequence computes exactly what a reference computes when it sees only the KVs the
    /// engine kept before its step (plus its own step): the engine's eviction is real and the patch's
    /// appended tokens leave no trace (their KVs never reach a later row). Also after post-fill eviction
    /// and eviction while decoding.
    /// </summary>
    [Theory]
    [InlineData("snapkv", ScheduleKind.Patched, false, false)]
    [InlineData("pyramidkv", ScheduleKind.Patched, false, false)]
    [InlineData("h2o", ScheduleKind.Patched, false, true)]
    [InlineData("zigzag", ScheduleKind.Patched, false, false)]
    [InlineData("snapkv", ScheduleKind.Patched, true, true)]
    [InlineData("snapkv", ScheduleKind.Naive, false, true)]
    [InlineData("l2", ScheduleKind.Naive, false, false)]
    [InlineData("h2o", ScheduleKind.PostFill, false, false)]
    [InlineData("pyramidkv", ScheduleKind.PostFill, false, true)]
    public void RowsSeeExactlyWhatWasKept(string name, ScheduleKind kind, bool replicated, bool decodeEviction)
    {
        int n = 37, chunk = 10, gen = 7, w = 4;
        var model = EvictionHarness.Model(3, kvHeads: 2, seed: 51, out var weights);
        var prompt = TinyModels.Tokens(n, weights.Config.VocabSize, seed: 52);
        var schedule = new EvictionSchedule
        {
            Kind = kind, Budget = EvictionBudget.Fraction(0.5), Window = w, CapacityMultiple = 1,
            EvictDuringDecode = decodeEviction, DecodeBudget = decodeEviction ? 12 : 0, DecodeInterval = 2,
        };
        var run = EvictionHarness.Run(model, new ScheduledEviction(EvictionHarness.Scorer(name), schedule), prompt, chunk, gen, storage: new KvStorage(replicated));
        EvictionHarness.AssertClose(EvictionHarness.ReferenceFromKeptSets(weights, run), run.Logits);

        var meter = run.Session.Meter;
        Assert.Equal(n + gen, meter.Rows);                                      // patch rows are not sequence rows
        Assert.Equal(kind == ScheduleKind.Patched ? 3 * w : 0, meter.PatchRows);
        for (int k = 0; k < 4; k++)                                             // after chunk k: nothing at or past its end
            Assert.All(run.Kept[k].SelectMany(l => l).SelectMany(h => h), p => Assert.True(p < Math.Min(n, (k + 1) * chunk)));
        if (decodeEviction)
            for (int t = 4; t < run.Kept.Count; t++)
                Assert.All(run.Kept[t].SelectMany(l => l), h => Assert.True(h.Length <= 12 + 1, $"step {t}: a head holds {h.Length} > budget 12 + interval − 1"));
        else
            Assert.Equal(run.Kept[3].Select(l => l.Select(h => h.Length + gen)), run.Kept[^1].Select(l => l.Select(h => h.Length)));
    }

    [Fact]
    public void ReplicatedStorageReallyStoresGroupSizeCopies()
    {
        var model = EvictionHarness.Model(2, kvHeads: 1, seed: 61, out var weights);   // 4 query heads share one KV head
        var prompt = TinyModels.Tokens(60, weights.Config.VocabSize, seed: 62);
        var schedule = EvictionSchedule.Naive(EvictionBudget.Fraction(0.5), window: 4);
        var shared = new Session(model, new ScheduledEviction(new SnapKV(), schedule), chunking: 16, pageSize: 4);
        var sharedRun = shared.Run(prompt, 4);
        var repl = new Session(model, new ScheduledEviction(new SnapKV(), schedule), chunking: 16, storage: new KvStorage(ReplicatePerQueryHead: true), pageSize: 4);
        var replRun = repl.Run(prompt, 4);
        int G = weights.Config.GroupSize;
        Assert.Equal(4, G);
        Assert.Equal(2 * 4, replRun.StoredHeads);
        Assert.Equal(G * sharedRun.PeakKvBytes, replRun.PeakKvBytes);
        Assert.Equal(G * sharedRun.FinalEntries, replRun.FinalEntries);
        Assert.Equal(G * sharedRun.PeakHeldEntries, replRun.PeakHeldEntries);
        // Each copy chose with its own query head, so the copies of a group differ (the "+C" fix shares one set).
        var snap = EvictionHarness.Snapshot(repl);
        Assert.Contains(Enumerable.Range(1, G), h => !snap[0][h].SequenceEqual(snap[0][0]));
    }

    [Fact]
    public void EvictedEntriesLeaveTheCacheAndChunkingLowersThePeak()
    {
        var model = EvictionHarness.Model(2, kvHeads: 2, seed: 71, out var weights);
        int n = 96;
        var prompt = TinyModels.Tokens(n, weights.Config.VocabSize, seed: 72);
        var budget = EvictionBudget.Fraction(0.75);
        var full = new Session(model, new FullAttention(), pageSize: 4).Run(prompt, 4);
        var postSession = new Session(model, new ScheduledEviction(new PyramidKV(), EvictionSchedule.PostFill(budget, 4) with { CapacityMultiple = 1 }), pageSize: 4);
        var post = postSession.Run(prompt, 4);
        var naiveSession = new Session(model, new ScheduledEviction(new PyramidKV(), EvictionSchedule.Naive(budget, 4)), chunking: 24, pageSize: 4);
        var naive = naiveSession.Run(prompt, 4);
        foreach (var s in new[] { postSession, naiveSession })
        {
            long pages = 0;
            for (int l = 0; l < 2; l++) for (int h = 0; h < 2; h++) pages += (s.Cache[l, h].Count + 3) / 4;
            Assert.Equal(pages, s.Cache.Pool.PagesInUse);                        // emptied pages went back
            Assert.Equal(s.Cache.LiveEntries, s.Cache.Pool.EntriesInUse);
        }
        // Post-fill saves memory after the pre-fill, not at its peak: a layer holds the whole prompt while it attends.
        Assert.True(post.FinalEntries < full.FinalEntries / 3);
        Assert.True(post.PeakHeldEntries >= 2 * n);
        Assert.Equal(full.PeakEntries - 2 * 2 * 4, post.PeakEntries);               // the pre-fill step, summed over heads
        // Chunked eviction lowers the peak itself.
        Assert.True(naive.PeakEntries < post.PeakEntries / 2);
        Assert.True(naive.PeakKvBytes < post.PeakKvBytes);
        Assert.True(naive.PeakHeldEntries < post.PeakHeldEntries);
    }
}
