using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Inference;
using KvNotebooks.Tests.Inference;

namespace KvNotebooks.Tests.Eviction;

/// <summary>
/// The engine's meter against the analytic accountant for score-based methods. The engine follows the
/// paper's code (capacity int((1 − p)·c), the patch's KVs dropped); the paper's formula (docs/footprint.md) instead
/// keeps round((1 − p)·c) + w₀ per chunk. So: (1) with the code's rules the meter equals
/// <see cref="KvFootprint.Scheduled"/> to the entry; (2) with the accounting rule
/// (<see cref="BudgetKind.EvictPlusWindow"/>) it equals the paper's <see cref="KvFootprint.TokenEviction"/>
/// to the entry, except that a patched chunk's peak also holds its w patch KVs, which the paper's
/// formula leaves out; (3) both accountants are the same formula fed different per-chunk counts.
/// </summary>
public class MeasuredFootprintTests
{
    private static readonly string[] Scorers = ["snapkv", "pyramidkv", "h2o", "zigzag", "l2"];

    [Fact]
    public void MeasuredEqualsTheScheduleAccountant()
    {
        var model = EvictionHarness.Model(3, kvHeads: 2, seed: 81, out var weights);
        int heads = 3 * 2;
        var rng = new Random(4);
        for (int trial = 0; trial < 60; trial++)
        {
            int n = rng.Next(1, 60), m = rng.Next(0, 6), chunk = rng.Next(1, 70), w = rng.Next(1, 9);
            string name = Scorers[trial % Scorers.Length];
            var kind = (ScheduleKind)(trial / Scorers.Length % 3);
            if (kind == ScheduleKind.Patched && name == "l2") kind = ScheduleKind.Naive;
            var budget = (trial / 15 % 3) switch
            {
                0 => EvictionBudget.Fraction(rng.Next(0, 10) / 10.0),
                1 => EvictionBudget.FractionPlusWindow(rng.Next(0, 10) / 10.0),
                _ => EvictionBudget.Absolute(w + rng.Next(0, 30)),
            };
            var schedule = new EvictionSchedule { Kind = kind, Budget = budget, Window = w, CapacityMultiple = rng.Next(0, 2) == 0 ? 1 : 8 };
            var prompt = TinyModels.Tokens(n, weights.Config.VocabSize, seed: trial);
            var run = new Session(model, new ScheduledEviction(EvictionHarness.Scorer(name), schedule), chunk, pageSize: 8).Run(prompt, m);
            var expected = KvFootprint.Scheduled(new ChunkPlan(n, chunk), m, schedule);
            string what = $"{name} {schedule} n={n} m={m} C={chunk}";
            Assert.True(heads * expected.Entries == run.Entries, $"{what}: entries measured {run.Entries}, analytic {heads * expected.Entries}");
            Assert.True(heads * expected.FullEntries == run.FullEntries, $"{what}: full entries");
            Assert.True(heads * expected.PeakEntries == run.PeakEntries, $"{what}: peak measured {run.PeakEntries}, analytic {heads * expected.PeakEntries}");
            Assert.Equal(expected.Footprint, run.Footprint, 12);
        }
    }

    [Theory]
    [InlineData(ScheduleKind.Naive, 300, 64, 0.5)]
    [InlineData(ScheduleKind.Naive, 230, 50, 0.8)]
    [InlineData(ScheduleKind.Patched, 300, 64, 0.5)]
    [InlineData(ScheduleKind.Patched, 230, 50, 0.3)]
    [InlineData(ScheduleKind.PostFill, 230, 1000, 0.7)]
    public void UnderThePapersAccountingMeasuredEqualsTokenEviction(ScheduleKind kind, int n, int chunk, double p)
    {
        int w = 8, m = 5, heads = 2 * 2;
        var model = EvictionHarness.Model(2, kvHeads: 2, seed: 83, out var weights);
        var prompt = TinyModels.Tokens(n, weights.Config.VocabSize, seed: 84);
        foreach (var scorer in new[] { "snapkv", "pyramidkv" })
        {
            var schedule = new EvictionSchedule { Kind = kind, Budget = EvictionBudget.FractionPlusWindow(p), Window = w };
            var run = new Session(model, new ScheduledEviction(EvictionHarness.Scorer(scorer), schedule), chunk, pageSize: 8).Run(prompt, m);
            var plan = new ChunkPlan(n, chunk);
            var paper = KvFootprint.TokenEviction(plan, m, p, window0: w);
            Assert.Equal(heads * paper.Entries, run.Entries);
            Assert.Equal(heads * paper.FullEntries, run.FullEntries);
            Assert.Equal(paper.Footprint, run.Footprint, 12);
            // The peak: the paper's points P_{k−1} + c_k, plus, for a patched chunk, the w patch KVs held while it attends.
            var points = HeadAccount.Global(plan, m, p, w).PeakPoints.ToArray();
            if (kind == ScheduleKind.Patched)
                for (int k = 0; k < plan.Count - 1; k++) points[k] += w;
            Assert.Equal(heads * points.Max(), run.PeakEntries);
            if (kind != ScheduleKind.Patched) Assert.Equal(heads * paper.PeakEntries, run.PeakEntries);
        }
    }

    [Fact]
    public void ThePapersFormulaIsTheScheduleAccountantWithItsOwnKeeps()
    {
        var rng = new Random(6);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = rng.Next(1, 500), m = rng.Next(0, 20), c = rng.Next(1, 300), w = rng.Next(0, 70);
            double p = rng.Next(0, 10) / 10.0;
            var plan = new ChunkPlan(n, c);
            long P = 0;
            var keeps = plan.Sizes.Select(ck => P += Math.Min((long)Math.Round((1 - p) * ck, MidpointRounding.ToEven) + w, ck)).ToArray();
            var general = HeadAccount.Chunked(plan, m, keeps);
            var paper = HeadAccount.Global(plan, m, p, w);
            Assert.Equal(paper.Entries, general.Entries);
            Assert.Equal(paper.PeakPoints, general.PeakPoints);
            if (w >= 1)
            {
                // With the accounting rule, a naive schedule is exactly that formula.
                var naive = KvFootprint.Scheduled(plan, m, EvictionSchedule.Naive(EvictionBudget.FractionPlusWindow(p), w));
                Assert.Equal(paper.Entries, naive.Entries);
            }
        }
        // The code's rule keeps about w fewer per chunk than the formula's, so it measures lower.
        var plan32k = new ChunkPlan(131072, 32768);
        var code = KvFootprint.Scheduled(plan32k, 100, EvictionSchedule.Patched(EvictionBudget.Fraction(0.5)));
        var formula = KvFootprint.TokenEviction(plan32k, 100, 0.5);
        Assert.True(code.Footprint < formula.Footprint && formula.Footprint - code.Footprint < 0.002,
            $"code {code.Footprint}, formula {formula.Footprint}");
    }
}
