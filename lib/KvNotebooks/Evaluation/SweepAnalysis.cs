using System.Globalization;
using KvNotebooks.Footprint;
using KvNotebooks.Reports;
using KvNotebooks.Tasks;

namespace KvNotebooks.Evaluation;

/// <summary>One method configuration's score and measurements on one category (means over the category's tasks,
/// docs/footprint.md "Aggregation"): a point of a score-vs-footprint curve.</summary>
public sealed record CategoryPoint(string Method, string Point, string Config, int Context, int Chunk, string Category,
    double Score, double Footprint, double PeakKv, double PeakKvBytes, int Tasks)
{
    /// <summary>The score with its standard error and 95 % bootstrap interval (examples resampled within each task);
    /// null when a row lacks per-example scores (written before they were recorded).</summary>
    public Estimate? ScoreEstimate { get; init; }
    /// <summary>The rows' example set ("fixed", or "seed:N" for generated examples such as the held-out ones).</summary>
    public string ExampleSet { get; init; } = EvalRow.FixedSet;
}

/// <summary>A bootstrap interval of a critical footprint: its ends are critical footprints themselves, so either may
/// be a bound ("&lt;32.5" when the resampled curves often hold at the smallest footprint swept).</summary>
public sealed record CriticalInterval(CriticalFootprintResult Lo, CriticalFootprintResult Hi, double StandardError, int Replicates)
{
    public override string ToString() => $"[{Lo}, {Hi}]";
}

/// <summary>A category's critical KV footprint for one curve: the full-attention score it is measured
/// against, the chance score of the same tasks, the points it was read from, and the value (null: no
/// complete point), with its bootstrap interval (<see cref="Interval"/>) or why there is none (<see cref="NoInterval"/>).</summary>
public sealed record CategoryCritical(string Category, double FullScore, double Chance, int Points, CriticalFootprintResult? Critical)
{
    /// <summary>The 95 % bootstrap interval of <see cref="Critical"/> (the whole interpolation resampled), or null.</summary>
    public CriticalInterval? Interval { get; init; }
    /// <summary>Why there is no interval (rows without per-example scores, unequal example counts), or null.</summary>
    public string? NoInterval { get; init; }

    /// <summary>"46.8 [38.1, 55.0]", or the value alone without an interval.</summary>
    public string Text => Critical is null ? "–" : Interval is { } i ? $"{Critical} {i}" : Critical.ToString();
}

/// <summary>Two curves compared on one category at one swept value (e.g. PyramidKV naive and patched at p = 0.5), on
/// the same examples: both scores, and the difference A − B with a paired bootstrap interval and, for contrast, the
/// interval an unpaired comparison would give.</summary>
public sealed record CategoryComparison(string Category, string Point, int Context, int Chunk, double A, double B, Estimate Paired, Estimate Unpaired);

/// <summary>
/// Reading sweep results the way the paper does: category = mean of its tasks, one point per method
/// configuration; the critical KV footprint per category is the smallest footprint keeping 90% of
/// full attention's category score, interpolated between swept points (<see cref="CriticalFootprint"/>,
/// Table 2). Scores and critical footprints carry seeded bootstrap intervals when the rows hold per-example scores
/// (docs/statistics.md).
/// </summary>
public static class SweepAnalysis
{
    /// <summary>Category means of every (method, config, context, chunk, example set). A configuration contributes to a
    /// category only when it has a row for every task of that category the rows hold for the same method, context and chunk
    /// (a sweep stopped half-way does not bias a category towards its easier tasks).</summary>
    public static IReadOnlyList<CategoryPoint> CategoryPoints(IEnumerable<EvalRow> rows, BootstrapOptions? bootstrap = null)
    {
        var list = rows.ToList();
        var result = new List<CategoryPoint>();
        foreach (var curve in list.GroupBy(r => (r.Model, r.Method, r.Context, r.Chunk, r.ExampleSet)))
        {
            var tasksOf = curve.GroupBy(r => r.Category).ToDictionary(g => g.Key, g => g.Select(r => r.Task).ToHashSet());
            foreach (var config in curve.GroupBy(r => r.MethodConfig))
                foreach (var cat in config.GroupBy(r => r.Category).OrderBy(g => CategoryOrder(g.Key)))
                {
                    var byTask = cat.GroupBy(r => r.Task).Select(g => g.Last()).ToList();
                    if (!tasksOf[cat.Key].SetEquals(byTask.Select(r => r.Task))) continue;
                    var first = byTask[0];
                    result.Add(new CategoryPoint(first.Method, PointOf(first.MethodConfig), first.MethodConfig, first.Context, first.Chunk, cat.Key,
                        byTask.Average(r => r.Score), byTask.Average(r => r.Footprint), byTask.Average(r => r.PeakKv),
                        byTask.Average(r => r.PeakKvBytes), byTask.Count)
                    {
                        ExampleSet = first.ExampleSet,
                        ScoreEstimate = byTask.All(r => r.ExampleScores is not null)
                            ? Statistics.CategoryMean(byTask.Select(r => (IReadOnlyList<double>)r.ExampleScores!).ToList(), bootstrap) : null,
                    });
                }
        }
        return result;
    }

    /// <summary>
    /// Critical KV footprint per category of one curve (<paramref name="method"/>: rows of one method label,
    /// context, chunk size and example set; the configurations along it, e.g. eviction rates, are its points) against
    /// full attention's rows at the same context and example set (several chunk sizes of full attention are averaged:
    /// its score does not depend on the chunk). Only tasks present in both count. Throws when the method rows
    /// mix curves or full attention has no row at their context.
    /// With per-example scores in every row, each value gets a bootstrap interval of the whole interpolation: each
    /// replicate resamples every task's example indices once and applies that resample to every point of the curve and
    /// to full attention (they were scored on the same examples), then reads the critical footprint off the resampled
    /// curve. Footprints stay at their means (they vary between examples only through the answer's length).
    /// </summary>
    public static IReadOnlyList<CategoryCritical> CriticalFootprints(IEnumerable<EvalRow> method, IEnumerable<EvalRow> full, double threshold = 0.9,
        BootstrapOptions? bootstrap = null)
    {
        var rows = method.ToList();
        if (rows.Count == 0) throw new ArgumentException("critical footprint: no method rows");
        var curves = rows.Select(r => (r.Model, r.Method, r.Context, r.Chunk, r.ExampleSet)).Distinct().ToList();
        if (curves.Count > 1)
            throw new ArgumentException($"critical footprint: the rows hold {curves.Count} curves ({string.Join("; ", curves.Select(c => $"{c.Method} at context {c.Context}, chunk {Footprint.Chunking.FromColumn(c.Chunk)}{SetSuffix(c.ExampleSet)}"))}); pass one");
        var (model, _, context, _, set) = curves[0];
        var fullRows = full.Where(r => r.Model == model && r.Context == context && r.ExampleSet == set).ToList();
        var fullByTask = fullRows.GroupBy(r => r.Task).ToDictionary(g => g.Key, g => g.ToList());
        if (fullByTask.Count == 0) throw new ArgumentException($"critical footprint: no full-attention rows for model {model} at context {context}{SetSuffix(set)}");
        var common = rows.Where(r => fullByTask.ContainsKey(r.Task)).ToList();
        var points = CategoryPoints(common, bootstrap);
        var result = new List<CategoryCritical>();
        foreach (var cat in common.Select(r => r.Category).Distinct().OrderBy(CategoryOrder))
        {
            var tasks = common.Where(r => r.Category == cat).Select(r => r.Task).Distinct().ToList();
            double fullScore = tasks.Average(t => fullByTask[t].Average(r => r.Score)), chance = tasks.Average(t => fullByTask[t][0].Chance);
            var pts = points.Where(p => p.Category == cat).ToList();
            if (pts.Count == 0)
            {
                result.Add(new CategoryCritical(cat, fullScore, chance, 0, null));
                continue;
            }
            var critical = CriticalFootprint.Find(pts.Select(p => (p.Footprint, p.Score)), fullScore, threshold);
            var configs = common.Where(r => r.Category == cat && pts.Any(p => p.Config == r.MethodConfig)).ToList();
            var (interval, why) = CriticalBootstrap(configs, pts, tasks, fullByTask, threshold, bootstrap);
            result.Add(new CategoryCritical(cat, fullScore, chance, pts.Count, critical) { Interval = interval, NoInterval = why });
        }
        return result;
    }

    /// <summary>The bootstrap of one category's critical footprint, or why it cannot be drawn.</summary>
    private static (CriticalInterval?, string?) CriticalBootstrap(List<EvalRow> configs, List<CategoryPoint> points, List<string> tasks,
        Dictionary<string, List<EvalRow>> fullByTask, double threshold, BootstrapOptions? bootstrap)
    {
        var involved = configs.Concat(tasks.SelectMany(t => fullByTask[t])).ToList();
        if (involved.Any(r => r.ExampleScores is null)) return (null, "rows without per-example scores");
        var sizes = new int[tasks.Count];
        for (int t = 0; t < tasks.Count; t++)
        {
            var counts = involved.Where(r => r.Task == tasks[t]).Select(r => r.ExampleScores!.Count).Distinct().ToList();
            if (counts.Count > 1) return (null, $"{tasks[t]}: rows with {string.Join(" and ", counts)} examples cannot be resampled together");
            sizes[t] = counts[0];
        }
        if (sizes.Min() < 2) return (null, "one example per task: no interval");
        // Per task: full attention's per-example scores (averaged over its chunk sizes) and each point's.
        var full = tasks.Select(t => Enumerable.Range(0, sizes[tasks.IndexOf(t)])
            .Select(i => fullByTask[t].Average(r => r.ExampleScores![i])).ToArray()).ToArray();
        var perPoint = points.Select(p => tasks.Select(t => configs.Last(r => r.MethodConfig == p.Config && r.Task == t).ExampleScores!).ToArray()).ToArray();
        var o = bootstrap ?? BootstrapOptions.Default;
        var replicates = Statistics.Resample(sizes, o, idx =>
        {
            double fullScore = 0;
            for (int t = 0; t < tasks.Count; t++) fullScore += Mean(full[t], idx[t]);
            fullScore /= tasks.Count;
            var curve = new (double, double)[points.Count];
            for (int k = 0; k < points.Count; k++)
            {
                double score = 0;
                for (int t = 0; t < tasks.Count; t++) score += Mean(perPoint[k][t], idx[t]);
                curve[k] = (points[k].Footprint, score / tasks.Count);
            }
            return CriticalFootprint.Find(curve, fullScore, threshold);
        });
        Array.Sort(replicates, CriticalFootprintResult.Compare);
        double mean = replicates.Average(r => r.Value);
        double sd = Math.Sqrt(replicates.Sum(r => (r.Value - mean) * (r.Value - mean)) / (replicates.Length - 1));
        var lo = replicates[Statistics.NearestRank(replicates.Length, (1 - o.Level) / 2)];
        var hi = replicates[Statistics.NearestRank(replicates.Length, (1 + o.Level) / 2)];
        return (new CriticalInterval(lo, hi, sd, replicates.Length), null);

        static double Mean(IReadOnlyList<double> x, int[] idx)
        {
            double s = 0;
            foreach (int i in idx) s += x[i];
            return s / idx.Length;
        }
    }

    /// <summary>
    /// A Table 2 of the rows: one line per curve (method label × context × chunk, and example set when it is not the
    /// fixed sets) other than <paramref name="fullMethod"/>, one column per category, cells as the paper prints them
    /// ("64.0", "&gt;93.0", "&lt;34.0", "–" without a complete point, "n/a" where 90% of full attention is not above
    /// chance, so that a critical footprint would mean nothing), followed by the 95 % bootstrap interval when the rows hold
    /// per-example scores ("64.0 [52.1, 71.9]"); closing lines give full attention's score and the chance score per
    /// category, so a reader sees when 90% of full attention is not far above chance, and say when intervals are missing.
    /// A curve whose context has no full-attention rows gets "–" everywhere.
    /// </summary>
    public static Table CriticalTable(IEnumerable<EvalRow> rows, string fullMethod = "full", double threshold = 0.9, BootstrapOptions? bootstrap = null)
    {
        var list = rows.ToList();
        var full = list.Where(r => r.Method == fullMethod).ToList();
        var categories = list.Select(r => r.Category).Distinct().OrderBy(CategoryOrder).ToList();
        var columns = new List<string> { "method", "context", "chunk" };
        columns.AddRange(categories);
        var lines = new List<object?[]>();
        var reference = new Dictionary<(string, int, string), IReadOnlyList<CategoryCritical>>();
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var curve in list.Where(r => r.Method != fullMethod).GroupBy(r => (r.Model, r.Method, r.Context, r.Chunk, r.ExampleSet)))
        {
            // A curve without a full-attention baseline at its context (a sweep still running) gets empty cells.
            var crit = full.Any(r => r.Model == curve.Key.Model && r.Context == curve.Key.Context && r.ExampleSet == curve.Key.ExampleSet)
                ? CriticalFootprints(curve, full, threshold, bootstrap) : [];
            if (crit.Count > 0) reference.TryAdd((curve.Key.Model, curve.Key.Context, curve.Key.ExampleSet), crit);
            var line = new List<object?> { curve.Key.Method + SetSuffix(curve.Key.ExampleSet), curve.Key.Context, Footprint.Chunking.FromColumn(curve.Key.Chunk).ToString() };
            line.AddRange(categories.Select(c => (object?)(crit.FirstOrDefault(x => x.Category == c) is not { } k ? "–"
                : threshold * k.FullScore <= k.Chance ? "n/a" // the target is no better than guessing: any method "holds" it
                : k.Text)));
            foreach (var k in crit) if (k.Critical is not null && k.NoInterval is { } why) missing.Add(why);
            lines.Add(line.ToArray());
        }
        foreach (var ((model, context, set), crit) in reference.DistinctBy(kv => (kv.Key.Item2, kv.Key.Item3)))
        {
            string Pct(double x) => (x * 100).ToString("F1", CultureInfo.InvariantCulture);
            var f = new List<object?> { "(full attention score)" + SetSuffix(set), context, "" };
            f.AddRange(categories.Select(c => (object?)(crit.FirstOrDefault(x => x.Category == c) is { } k ? Pct(k.FullScore) : "–")));
            lines.Add(f.ToArray());
            var ch = new List<object?> { "(chance score)" + SetSuffix(set), context, "" };
            ch.AddRange(categories.Select(c => (object?)(crit.FirstOrDefault(x => x.Category == c) is { } k ? Pct(k.Chance) : "–")));
            lines.Add(ch.ToArray());
        }
        foreach (var why in missing)
        {
            var note = new List<object?> { $"(no 95 % interval: {why})", "", "" };
            note.AddRange(categories.Select(_ => (object?)""));
            lines.Add(note.ToArray());
        }
        return new Table(columns, lines);
    }

    /// <summary>
    /// Curve A against curve B (e.g. PyramidKV naive and patched rows) at every swept value both hold, per category:
    /// the paired difference A − B over the same examples, with its bootstrap interval, and the unpaired interval for
    /// contrast. Rows are matched by context, chunk, swept value (<see cref="PointOf"/>), task and example set; a category
    /// is compared only where both sides have every one of its tasks with per-example scores on the same number of examples.
    /// With <paramref name="matchChunk"/> false the chunk is not matched: one curve at two chunk sizes (e.g. chunks of 128
    /// against 512, the same examples), each side given at one chunk size; the result carries A's chunk.
    /// </summary>
    public static IReadOnlyList<CategoryComparison> Compare(IEnumerable<EvalRow> a, IEnumerable<EvalRow> b, BootstrapOptions? bootstrap = null,
        bool matchChunk = true)
    {
        var bRows = b.ToList();
        if (!matchChunk && (a.Select(r => r.Chunk).Distinct().Count() > 1 || bRows.Select(r => r.Chunk).Distinct().Count() > 1))
            throw new ArgumentException("comparing across chunk sizes: give each side at one chunk size");
        var result = new List<CategoryComparison>();
        foreach (var g in a.GroupBy(r => (r.Context, r.Chunk, r.ExampleSet, Point: PointOf(r.MethodConfig), r.Category))
                     .OrderBy(g => g.Key.Context).ThenBy(g => g.Key.Chunk).ThenBy(g => CategoryOrder(g.Key.Category)).ThenBy(g => g.Key.Point, StringComparer.Ordinal))
        {
            var pairs = new List<(EvalRow A, EvalRow B)>();
            var tasks = bRows.Where(r => r.Category == g.Key.Category && r.Context == g.Key.Context).Select(r => r.Task)
                .Concat(g.Select(r => r.Task)).Distinct().ToList();
            foreach (var task in tasks)
            {
                var ra = g.LastOrDefault(r => r.Task == task);
                var rb = bRows.LastOrDefault(r => r.Task == task && r.Context == g.Key.Context && (!matchChunk || r.Chunk == g.Key.Chunk)
                                                  && r.ExampleSet == g.Key.ExampleSet && PointOf(r.MethodConfig) == g.Key.Point);
                if (ra is null || rb is null) break;
                pairs.Add((ra, rb));
            }
            if (pairs.Count != tasks.Count || pairs.Any(p => p.A.ExampleScores is null || p.B.ExampleScores is null
                                                              || p.A.ExampleScores.Count != p.B.ExampleScores.Count)) continue;
            var sa = pairs.Select(p => (IReadOnlyList<double>)p.A.ExampleScores!).ToList();
            var sb = pairs.Select(p => (IReadOnlyList<double>)p.B.ExampleScores!).ToList();
            result.Add(new CategoryComparison(g.Key.Category, g.Key.Point, g.Key.Context, g.Key.Chunk,
                pairs.Average(p => p.A.Score), pairs.Average(p => p.B.Score),
                Statistics.PairedDifference(sa, sb, bootstrap), Statistics.UnpairedDifference(sa, sb, bootstrap)));
        }
        return result;
    }

    private static string SetSuffix(string exampleSet) => exampleSet == EvalRow.FixedSet ? "" : $" [{exampleSet}]";

    /// <summary>The swept value in a config line: "p=0.7", "4-bit", "window=256", "budget=512", "sparsity=0.7" (a learned
    /// head mask's share of streaming heads), or "" — the same text as <see cref="Eviction.MethodSpec.Point"/>.</summary>
    public static string PointOf(string config)
    {
        foreach (var part in config.Split(';'))
        {
            if (part.StartsWith("evict=", StringComparison.Ordinal)) return "p=" + part[6..];
            if (part.StartsWith("sparsity=", StringComparison.Ordinal)) return part;
            if (part.StartsWith("budget=", StringComparison.Ordinal)) return part;
            if (part.StartsWith("bits=", StringComparison.Ordinal)) return part[5..] + "-bit";
        }
        if (config.StartsWith("streaming", StringComparison.Ordinal) || config.StartsWith("headmask", StringComparison.Ordinal))
            foreach (var part in config.Split(';'))
                if (part.StartsWith("window=", StringComparison.Ordinal)) return part;
        return "";
    }

    private static int CategoryOrder(string c)
    {
        int i = Array.IndexOf(TaskSuite.Categories, c);
        return i < 0 ? int.MaxValue : i;
    }
}
