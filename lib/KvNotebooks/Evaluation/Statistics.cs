using System.Globalization;

namespace KvNotebooks.Evaluation;

/// <summary>How intervals are drawn: bootstrap replicates, the seed of the resampling, the confidence level.
/// The same options on the same data always give the same interval.</summary>
public sealed record BootstrapOptions
{
    /// <summary>Bootstrap replicates (resamples of the examples).</summary>
    public int Replicates { get; init; } = 2000;
    /// <summary>Seed of the resampling (any fixed number; results depend on it only through Monte Carlo noise).</summary>
    public ulong Seed { get; init; } = 20_250_620;
    /// <summary>Confidence level of the intervals.</summary>
    public double Level { get; init; } = 0.95;

    public static BootstrapOptions Default { get; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> on an impossible setting.</summary>
    public void Validate()
    {
        if (Replicates < 100) throw new ArgumentException($"bootstrap replicates must be ≥ 100 (got {Replicates})");
        if (!(Level is > 0 and < 1)) throw new ArgumentException($"confidence level must be in (0, 1) (got {Level})");
    }
}

/// <summary>
/// A mean (or a difference of means) with its uncertainty: the value from all examples, the standard error
/// (analytic: s/√n for one task, √(Σ s²/n)/K for a category of K tasks), and a percentile-bootstrap interval
/// [<see cref="Lo"/>, <see cref="Hi"/>] at the options' level. With a single example per task there is no
/// interval: <see cref="StandardError"/>, <see cref="Lo"/> and <see cref="Hi"/> are NaN.
/// </summary>
public sealed record Estimate(double Value, double StandardError, double Lo, double Hi, int N)
{
    /// <summary>Whether there is an interval (at least two examples per task).</summary>
    public bool HasInterval => !double.IsNaN(Lo);

    /// <summary>"46.8 [38.1, 55.0]" in percent (fractions × 100, one decimal), or "46.8 (n = 1)" without an interval.</summary>
    public string ToPercent()
    {
        static string P(double x) => (x * 100).ToString("F1", CultureInfo.InvariantCulture);
        return HasInterval ? $"{P(Value)} [{P(Lo)}, {P(Hi)}]" : $"{P(Value)} (n = {N})";
    }

    public override string ToString() => ToPercent();
}

/// <summary>
/// The statistics the workbook reports (docs/statistics.md): means of per-example scores with standard errors and
/// seeded percentile-bootstrap confidence intervals, for one task, for a category (the mean of its task means:
/// examples are resampled within each task), and for paired and unpaired differences. <see cref="Resample{T}"/> is
/// the engine under all of them, and under the critical footprint's interval (<see cref="SweepAnalysis"/>): one
/// resample of each task's example indices per replicate, applied to every quantity that shares those examples.
/// </summary>
public static class Statistics
{
    /// <summary>s/√n with the sample standard deviation (n − 1); NaN for fewer than two values.</summary>
    public static double StandardError(IReadOnlyList<double> x)
    {
        int n = x.Count;
        if (n < 2) return double.NaN;
        double mean = x.Average(), ss = 0;
        foreach (double v in x) ss += (v - mean) * (v - mean);
        return Math.Sqrt(ss / (n - 1) / n);
    }

    /// <summary>The mean of one task's per-example scores.</summary>
    public static Estimate Mean(IReadOnlyList<double> scores, BootstrapOptions? options = null) => CategoryMean([scores], options);

    /// <summary>A category's score: the mean over its tasks of each task's mean score. Each replicate resamples every
    /// task's examples (with replacement, as many as it has) independently.</summary>
    public static Estimate CategoryMean(IReadOnlyList<IReadOnlyList<double>> tasks, BootstrapOptions? options = null)
    {
        Check(tasks, "category mean");
        double value = tasks.Average(t => t.Average());
        double se = Math.Sqrt(tasks.Sum(t => Sq(StandardError(t)))) / tasks.Count;
        return Interval(value, se, Sizes(tasks), options, idx => MeanOfMeans(tasks, idx));
    }

    /// <summary>
    /// Paired difference a − b of category means over the same examples (a[t][i] and b[t][i] are one example scored two
    /// ways, e.g. PyramidKV naive and patched): each replicate applies one resample to both, so what the examples share
    /// cancels. Standard error: √(Σ s_d²/n)/K with s_d the standard deviation of the per-example differences.
    /// </summary>
    public static Estimate PairedDifference(IReadOnlyList<IReadOnlyList<double>> a, IReadOnlyList<IReadOnlyList<double>> b, BootstrapOptions? options = null)
    {
        Check(a, "paired difference");
        Check(b, "paired difference");
        if (a.Count != b.Count || a.Zip(b).Any(p => p.First.Count != p.Second.Count))
            throw new ArgumentException("paired difference: both sides need the same tasks with the same examples");
        var d = a.Zip(b, (x, y) => (IReadOnlyList<double>)x.Zip(y, (u, v) => u - v).ToArray()).ToList();
        double se = Math.Sqrt(d.Sum(t => Sq(StandardError(t)))) / d.Count;
        return Interval(d.Average(t => t.Average()), se, Sizes(d), options, idx => MeanOfMeans(d, idx));
    }

    /// <summary>Unpaired difference a − b of category means, as if the two sides had been scored on independent
    /// examples: each side is resampled on its own. What a comparison without pairing would claim.</summary>
    public static Estimate UnpairedDifference(IReadOnlyList<IReadOnlyList<double>> a, IReadOnlyList<IReadOnlyList<double>> b, BootstrapOptions? options = null)
    {
        Check(a, "unpaired difference");
        Check(b, "unpaired difference");
        if (a.Count != b.Count) throw new ArgumentException("unpaired difference: both sides need the same number of tasks");
        double se = Math.Sqrt(a.Sum(t => Sq(StandardError(t))) + b.Sum(t => Sq(StandardError(t)))) / a.Count;
        var sizes = Sizes(a).Concat(Sizes(b)).ToArray();
        int k = a.Count;
        return Interval(a.Average(t => t.Average()) - b.Average(t => t.Average()), se, sizes, options,
            idx => MeanOfMeans(a, idx[..k]) - MeanOfMeans(b, idx[k..]));
    }

    /// <summary>
    /// Runs the bootstrap: for each replicate, one resample of indices per group (group g draws
    /// <paramref name="sizes"/>[g] indices uniformly from [0, sizes[g]) with replacement), handed to
    /// <paramref name="statistic"/>. Replicate r depends only on (options.Seed, r), so results do not depend on threads or order.
    /// </summary>
    public static T[] Resample<T>(IReadOnlyList<int> sizes, BootstrapOptions? options, Func<int[][], T> statistic)
    {
        var o = options ?? BootstrapOptions.Default;
        o.Validate();
        if (sizes.Count == 0 || sizes.Any(n => n < 1)) throw new ArgumentException("bootstrap: every group needs at least one example");
        var idx = sizes.Select(n => new int[n]).ToArray();
        var result = new T[o.Replicates];
        for (int r = 0; r < o.Replicates; r++)
        {
            var rng = new SplitMix64(o.Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(r + 1)));
            for (int g = 0; g < idx.Length; g++)
                for (int i = 0; i < idx[g].Length; i++) idx[g][i] = rng.Below(idx[g].Length);
            result[r] = statistic(idx);
        }
        return result;
    }

    /// <summary>The (1 − level)/2 and (1 + level)/2 quantiles of <paramref name="values"/> (linear between order
    /// statistics, R's type 7).</summary>
    public static (double Lo, double Hi) PercentileInterval(IReadOnlyList<double> values, double level)
    {
        var s = values.Order().ToArray();
        return (Quantile(s, (1 - level) / 2), Quantile(s, (1 + level) / 2));
    }

    /// <summary>Quantile q of sorted values (type 7).</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        if (sorted.Count == 0) throw new ArgumentException("quantile of no values");
        double h = (sorted.Count - 1) * q;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>Index into sorted values of quantile q by nearest rank (for ordered outcomes that cannot be averaged).</summary>
    public static int NearestRank(int count, double q) => Math.Clamp((int)Math.Ceiling(q * count) - 1, 0, count - 1);

    /// <summary>Examples per task (one per category of one task) that bring the standard error of a category mean to
    /// at most <paramref name="targetSe"/>: n ≥ Σ σ_t² / (K²·target²), with σ_t² each task's per-example variance.</summary>
    public static int ExamplesFor(IReadOnlyList<double> taskVariances, double targetSe)
    {
        if (taskVariances.Count == 0) throw new ArgumentException("no tasks");
        if (targetSe <= 0) throw new ArgumentException("the target standard error must be positive");
        int k = taskVariances.Count;
        return Math.Max(1, (int)Math.Ceiling(taskVariances.Sum() / (k * (double)k * targetSe * targetSe) - 1e-9));
    }

    private static Estimate Interval(double value, double se, int[] sizes, BootstrapOptions? options, Func<int[][], double> statistic)
    {
        int n = sizes.Min();
        if (n < 2) return new Estimate(value, double.NaN, double.NaN, double.NaN, n);
        var o = options ?? BootstrapOptions.Default;
        var (lo, hi) = PercentileInterval(Resample(sizes, o, statistic), o.Level);
        return new Estimate(value, se, lo, hi, n);
    }

    private static double MeanOfMeans(IReadOnlyList<IReadOnlyList<double>> tasks, int[][] idx)
    {
        double sum = 0;
        for (int t = 0; t < tasks.Count; t++)
        {
            double s = 0;
            foreach (int i in idx[t]) s += tasks[t][i];
            sum += s / idx[t].Length;
        }
        return sum / tasks.Count;
    }

    private static int[] Sizes(IReadOnlyList<IReadOnlyList<double>> tasks) => tasks.Select(t => t.Count).ToArray();

    private static void Check(IReadOnlyList<IReadOnlyList<double>> tasks, string what)
    {
        if (tasks.Count == 0) throw new ArgumentException($"{what}: no tasks");
        if (tasks.Any(t => t.Count == 0)) throw new ArgumentException($"{what}: a task has no examples");
        if (tasks.Any(t => t.Any(x => !double.IsFinite(x)))) throw new ArgumentException($"{what}: a score is not finite");
    }

    private static double Sq(double x) => double.IsNaN(x) ? 0 : x * x;

    /// <summary>SplitMix64 (Steele, Lea, Flood 2014): a small generator whose sequence is fixed by its seed on every
    /// runtime (System.Random's seeded sequence is not a documented contract).</summary>
    private struct SplitMix64(ulong seed)
    {
        private ulong _state = seed;

        public ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in [0, n) (Lemire's multiply-shift; the bias, below n/2³², is far under the Monte Carlo noise).</summary>
        public int Below(int n) => (int)(((Next() >> 32) * (ulong)n) >> 32);
    }
}
