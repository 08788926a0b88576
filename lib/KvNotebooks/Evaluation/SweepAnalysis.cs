using System.Globalization;
using KvNotebooks.Footprint;
using KvNotebooks.Reports;
using KvNotebooks.Tasks;

namespace KvNotebooks.Evaluation;

/// <summary>One method configuration's score and measurements on one category (means over the category's
/// tasks, PAPER.md §1.2): a point of a score-vs-footprint curve.</summary>
public sealed record CategoryPoint(string Method, string Point, string Config, int Context, int Chunk, string Category,
    double Score, double Footprint, double PeakKv, double PeakKvBytes, int Tasks);

/// <summary>A category's critical KV footprint for one curve: the full-attention score it is measured
/// against, the chance score of the same tasks, the points it was read from, and the value (null: no
/// complete point).</summary>
public sealed record CategoryCritical(string Category, double FullScore, double Chance, int Points, CriticalFootprintResult? Critical);

/// <summary>
/// Reading sweep results the way the paper does: category = mean of its tasks, one point per method
/// configuration; the critical KV footprint per category is the smallest footprint keeping 90% of
/// full attention's category score, interpolated between swept points (<see cref="CriticalFootprint"/>,
/// Table 2).
/// </summary>
public static class SweepAnalysis
{
    /// <summary>Category means of every (method, config, context, chunk). A configuration contributes to a
    /// category only when it has a row for every task of that category the rows hold for the same method, context and chunk
    /// (a sweep stopped half-way does not bias a category towards its easier tasks).</summary>
    public static IReadOnlyList<CategoryPoint> CategoryPoints(IEnumerable<EvalRow> rows)
    {
        var list = rows.ToList();
        var result = new List<CategoryPoint>();
        foreach (var curve in list.GroupBy(r => (r.Model, r.Method, r.Context, r.Chunk)))
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
                        byTask.Average(r => r.PeakKvBytes), byTask.Count));
                }
        }
        return result;
    }

    /// <summary>
    /// Critical KV footprint per category of one curve (<paramref name="method"/>: rows of one method label,
    /// context and chunk size; the configurations along it, e.g. eviction rates, are its points) against
    /// full attention's rows at the same context (several chunk sizes of full attention are averaged: its
    /// score does not depend on the chunk). Only tasks present in both count. Throws when the method rows
    /// mix curves or full attention has no row at their context.
    /// </summary>
    public static IReadOnlyList<CategoryCritical> CriticalFootprints(IEnumerable<EvalRow> method, IEnumerable<EvalRow> full, double threshold = 0.9)
    {
        var rows = method.ToList();
        if (rows.Count == 0) throw new ArgumentException("critical footprint: no method rows");
        var curves = rows.Select(r => (r.Model, r.Method, r.Context, r.Chunk)).Distinct().ToList();
        if (curves.Count > 1)
            throw new ArgumentException($"critical footprint: the rows hold {curves.Count} curves ({string.Join("; ", curves.Select(c => $"{c.Method} at context {c.Context}, chunk {Footprint.Chunking.FromColumn(c.Chunk)}"))}); pass one");
        var (model, _, context, _) = curves[0];
        var fullByTask = full.Where(r => r.Model == model && r.Context == context)
            .GroupBy(r => r.Task).ToDictionary(g => g.Key, g => (Score: g.Average(r => r.Score), Chance: g.First().Chance, Category: g.First().Category));
        if (fullByTask.Count == 0) throw new ArgumentException($"critical footprint: no full-attention rows for model {model} at context {context}");
        var common = rows.Where(r => fullByTask.ContainsKey(r.Task)).ToList();
        var points = CategoryPoints(common);
        var result = new List<CategoryCritical>();
        foreach (var cat in common.Select(r => r.Category).Distinct().OrderBy(CategoryOrder))
        {
            var tasks = common.Where(r => r.Category == cat).Select(r => r.Task).Distinct().ToList();
            double fullScore = tasks.Average(t => fullByTask[t].Score), chance = tasks.Average(t => fullByTask[t].Chance);
            var pts = points.Where(p => p.Category == cat).Select(p => (p.Footprint, p.Score)).ToList();
            result.Add(new CategoryCritical(cat, fullScore, chance, pts.Count, pts.Count == 0 ? null : CriticalFootprint.Find(pts, fullScore, threshold)));
        }
        return result;
    }

    /// <summary>
    /// A Table 2 of the rows: one line per curve (method label × context × chunk) other than
    /// <paramref name="fullMethod"/>, one column per category, cells as the paper prints them ("64.0",
    /// "&gt;93.0", "&lt;34.0", "–" without a complete point, "n/a" where 90% of full attention is not above
    /// chance, so that a critical footprint would mean nothing); closing lines give full attention's score and the
    /// chance score per category, so a reader sees when 90% of full attention is not far above chance.
    /// A curve whose context has no full-attention rows gets "–" everywhere.
    /// </summary>
    public static Table CriticalTable(IEnumerable<EvalRow> rows, string fullMethod = "full", double threshold = 0.9)
    {
        var list = rows.ToList();
        var full = list.Where(r => r.Method == fullMethod).ToList();
        var categories = list.Select(r => r.Category).Distinct().OrderBy(CategoryOrder).ToList();
        var columns = new List<string> { "method", "context", "chunk" };
        columns.AddRange(categories);
        var lines = new List<object?[]>();
        var reference = new Dictionary<(string, int), IReadOnlyList<CategoryCritical>>();
        foreach (var curve in list.Where(r => r.Method != fullMethod).GroupBy(r => (r.Model, r.Method, r.Context, r.Chunk)))
        {
            // A curve without a full-attention baseline at its context (a sweep still running) gets empty cells.
            var crit = full.Any(r => r.Model == curve.Key.Model && r.Context == curve.Key.Context)
                ? CriticalFootprints(curve, full, threshold) : [];
            if (crit.Count > 0) reference.TryAdd((curve.Key.Model, curve.Key.Context), crit);
            var line = new List<object?> { curve.Key.Method, curve.Key.Context, Footprint.Chunking.FromColumn(curve.Key.Chunk).ToString() };
            line.AddRange(categories.Select(c => (object?)(crit.FirstOrDefault(x => x.Category == c) is not { } k ? "–"
                : threshold * k.FullScore <= k.Chance ? "n/a" // the target is no better than guessing: any method "holds" it
                : k.Critical?.ToString() ?? "–")));
            lines.Add(line.ToArray());
        }
        foreach (var ((model, context), crit) in reference.DistinctBy(kv => kv.Key.Item2))
        {
            string Pct(double x) => (x * 100).ToString("F1", CultureInfo.InvariantCulture);
            var f = new List<object?> { "(full attention score)", context, "" };
            f.AddRange(categories.Select(c => (object?)(crit.FirstOrDefault(x => x.Category == c) is { } k ? Pct(k.FullScore) : "–")));
            lines.Add(f.ToArray());
            var ch = new List<object?> { "(chance score)", context, "" };
            ch.AddRange(categories.Select(c => (object?)(crit.FirstOrDefault(x => x.Category == c) is { } k ? Pct(k.Chance) : "–")));
            lines.Add(ch.ToArray());
        }
        return new Table(columns, lines);
    }

    /// <summary>The swept value in a config line: "p=0.7", "4-bit", "window=256", "budget=512", or "".</summary>
    public static string PointOf(string config)
    {
        foreach (var part in config.Split(';'))
        {
            if (part.StartsWith("evict=", StringComparison.Ordinal)) return "p=" + part[6..];
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
