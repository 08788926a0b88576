using KvNotebooks.Evaluation;

namespace KvNotebooks.Tests.Evaluation;

public sealed class StatisticsTests
{
    private static readonly BootstrapOptions Quick = new() { Replicates = 1000 };

    [Fact]
    public void About_95_percent_of_intervals_contain_the_true_mean()
    {
        // 200 data sets of 100 Bernoulli(0.3) examples, and 200 of 60 graded scores with mean 0.5; fixed seeds, so the
        // counts are fixed too. The percentile bootstrap is known to cover a little under its level at these sizes.
        int binary = 0, graded = 0;
        for (int seed = 0; seed < 200; seed++)
        {
            var rng = new Random(seed);
            var x = Enumerable.Range(0, 100).Select(_ => rng.NextDouble() < 0.3 ? 1.0 : 0.0).ToArray();
            var e = Statistics.Mean(x, Quick with { Seed = (ulong)seed });
            if (e.Lo <= 0.3 && 0.3 <= e.Hi) binary++;
            var y = Enumerable.Range(0, 60).Select(_ => (rng.NextDouble() + rng.NextDouble()) / 2).ToArray(); // triangular, mean 0.5
            var g = Statistics.Mean(y, Quick with { Seed = (ulong)seed + 1000 });
            if (g.Lo <= 0.5 && 0.5 <= g.Hi) graded++;
        }
        Assert.InRange(binary / 200.0, 0.90, 0.98);
        Assert.InRange(graded / 200.0, 0.90, 0.98);
    }

    [Fact]
    public void A_category_interval_covers_the_mean_of_its_task_means()
    {
        // Two tasks with different true means (0.8 and 0.2) and sizes: the category's true score is 0.5.
        int covered = 0;
        for (int seed = 0; seed < 200; seed++)
        {
            var rng = new Random(seed + 5000);
            IReadOnlyList<double> a = Enumerable.Range(0, 80).Select(_ => rng.NextDouble() < 0.8 ? 1.0 : 0.0).ToArray();
            IReadOnlyList<double> b = Enumerable.Range(0, 40).Select(_ => rng.NextDouble() < 0.2 ? 1.0 : 0.0).ToArray();
            var e = Statistics.CategoryMean([a, b], Quick with { Seed = (ulong)seed });
            Assert.Equal((a.Average() + b.Average()) / 2, e.Value, 12);
            if (e.Lo <= 0.5 && 0.5 <= e.Hi) covered++;
        }
        Assert.InRange(covered / 200.0, 0.90, 0.98);
    }

    [Fact]
    public void Standard_errors_follow_their_formulas_and_the_bootstrap_agrees()
    {
        IReadOnlyList<double> x = [1, 0, 1, 0];
        Assert.Equal(Math.Sqrt(1.0 / 3 / 4), Statistics.StandardError(x), 12);
        IReadOnlyList<double> y = [1, 1, 1, 0, 0, 0.5];
        var c = Statistics.CategoryMean([x, y]);
        Assert.Equal(Math.Sqrt(Math.Pow(Statistics.StandardError(x), 2) + Math.Pow(Statistics.StandardError(y), 2)) / 2, c.StandardError, 12);

        // The bootstrap's spread matches s/√n (up to the (n − 1)/n of the plug-in variance and Monte Carlo noise).
        var rng = new Random(3);
        var z = Enumerable.Range(0, 200).Select(_ => rng.NextDouble()).ToArray();
        var reps = Statistics.Resample([z.Length], null, idx => idx[0].Average(i => z[i]));
        double m = reps.Average(), sd = Math.Sqrt(reps.Sum(r => (r - m) * (r - m)) / (reps.Length - 1));
        Assert.InRange(sd / Statistics.StandardError(z), 0.9, 1.1);
    }

    [Fact]
    public void Paired_intervals_are_narrower_than_unpaired_ones_on_correlated_data()
    {
        // Examples differ a lot in difficulty; B scores each about 0.05 above A. Pairing removes the difficulty.
        var rng = new Random(11);
        var a = new double[60];
        var b = new double[60];
        for (int i = 0; i < a.Length; i++)
        {
            double difficulty = rng.NextDouble() * 0.9;
            a[i] = difficulty;
            b[i] = Math.Clamp(difficulty + 0.05 + (rng.NextDouble() - 0.5) * 0.04, 0, 1);
        }
        var paired = Statistics.PairedDifference([b], [a]);
        var unpaired = Statistics.UnpairedDifference([b], [a]);
        Assert.Equal(b.Average() - a.Average(), paired.Value, 12);
        Assert.Equal(paired.Value, unpaired.Value, 12);
        Assert.True(paired.Hi - paired.Lo < (unpaired.Hi - unpaired.Lo) / 5, $"paired {paired}, unpaired {unpaired}");
        Assert.True(paired.StandardError < unpaired.StandardError / 5);
        Assert.True(paired.Lo > 0); // pairing sees the improvement; the unpaired interval straddles 0
        Assert.True(unpaired.Lo < 0);
        Assert.Throws<ArgumentException>(() => Statistics.PairedDifference([a], [b[..59]]));
    }

    [Fact]
    public void Edge_cases_all_zero_all_one_and_a_single_example()
    {
        var zero = Statistics.Mean(new double[10]);
        Assert.Equal((0.0, 0.0, 0.0, 0.0), (zero.Value, zero.StandardError, zero.Lo, zero.Hi));
        var one = Statistics.Mean(Enumerable.Repeat(1.0, 10).ToArray());
        Assert.Equal((1.0, 0.0, 1.0, 1.0), (one.Value, one.StandardError, one.Lo, one.Hi));
        var single = Statistics.Mean([0.7]);
        Assert.Equal(0.7, single.Value);
        Assert.False(single.HasInterval);
        Assert.True(double.IsNaN(single.StandardError));
        Assert.Equal("70.0 (n = 1)", single.ToPercent());
        Assert.False(Statistics.CategoryMean([[1.0, 0.0], [0.5]]).HasInterval); // one task with one example: no interval
        Assert.Throws<ArgumentException>(() => Statistics.Mean([]));
        Assert.Throws<ArgumentException>(() => Statistics.Mean([double.NaN, 1]));
        Assert.Throws<ArgumentException>(() => Statistics.Mean([1, 0], new BootstrapOptions { Replicates = 10 }));
    }

    [Fact]
    public void Intervals_are_deterministic_given_the_seed()
    {
        var rng = new Random(2);
        var x = Enumerable.Range(0, 30).Select(_ => rng.NextDouble()).ToArray();
        Assert.Equal(Statistics.Mean(x), Statistics.Mean(x));
        var other = Statistics.Mean(x, new BootstrapOptions { Seed = 99 });
        Assert.NotEqual(Statistics.Mean(x).Lo, other.Lo);
        Assert.InRange(other.Lo - Statistics.Mean(x).Lo, -0.02, 0.02);
        Assert.Equal("50.0 [10.0, 90.0]", new Estimate(0.5, 0.1, 0.1, 0.9, 10).ToPercent());
    }

    [Fact]
    public void Quantiles_interpolate_between_order_statistics()
    {
        double[] s = [0, 1, 2, 3, 4];
        Assert.Equal(2, Statistics.Quantile(s, 0.5));
        Assert.Equal(0.1, Statistics.Quantile(s, 0.025), 12);
        Assert.Equal(3.9, Statistics.Quantile(s, 0.975), 12);
        Assert.Equal(0, Statistics.NearestRank(1000, 0.0001));
        Assert.Equal(24, Statistics.NearestRank(1000, 0.025));
        Assert.Equal(974, Statistics.NearestRank(1000, 0.975));
    }

    [Fact]
    public void Examples_needed_for_a_target_standard_error()
    {
        Assert.Equal(400, Statistics.ExamplesFor([0.25], 0.025));        // one binary task at p = 0.5
        Assert.Equal(200, Statistics.ExamplesFor([0.25, 0.25], 0.025));  // two: the category averages them
        Assert.Equal(36, Statistics.ExamplesFor([0.09, 0], 0.025));
        // The standard error at that n is at most the target.
        double se = Math.Sqrt((0.25 + 0.21) / 2) / 2 / Math.Sqrt(Statistics.ExamplesFor([0.25, 0.21], 0.025));
        Assert.True(se <= 0.025 + 1e-12);
    }
}
