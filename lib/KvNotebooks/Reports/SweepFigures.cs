using System.Text.Json.Nodes;
using KvNotebooks.Evaluation;

namespace KvNotebooks.Reports;

/// <summary>
/// Figures of sweep results as the paper draws them (Fig. 3): score against KV footprint (or peak KV),
/// one curve per method, a grey line at full attention's score, a red one at the threshold (90% of it)
/// and a dotted one at chance.
/// </summary>
public static class SweepFigures
{
    /// <summary>
    /// One category: a line per method (its points sorted by <paramref name="x"/>, hover text the swept
    /// value), with horizontal lines for full attention, <paramref name="threshold"/> × full attention and
    /// chance when given. <paramref name="x"/> defaults to the footprint; axes are in percent.
    /// </summary>
    public static Figure ScoreVs(IEnumerable<CategoryPoint> points, string category, double? fullScore, double? chance = null,
        double threshold = 0.9, Func<CategoryPoint, double>? x = null, string xTitle = "KV footprint (%)", string? title = null)
    {
        x ??= p => p.Footprint;
        var pts = points.Where(p => p.Category == category).ToList();
        var f = Figure.Scatter(title ?? $"{category}: score vs {xTitle.Replace(" (%)", "")}", xTitle, $"{category} score (%)");
        foreach (var curve in pts.GroupBy(p => p.Method))
        {
            var sorted = curve.OrderBy(x).ToList();
            f.AddTrace(new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "lines+markers", ["name"] = curve.Key,
                ["x"] = Figure.Numbers(sorted.Select(p => x(p) * 100)), ["y"] = Figure.Numbers(sorted.Select(p => p.Score * 100)),
                ["text"] = Figure.Strings(sorted.Select(p => p.Point)),
            });
        }
        double lo = pts.Count == 0 ? 0 : Math.Min(0, pts.Min(x) * 100), hi = pts.Count == 0 ? 100 : Math.Max(100, pts.Max(x) * 100);
        if (fullScore is { } full)
        {
            HLine(f, "full attention", lo, hi, full * 100, "#7f7f7f", "solid");
            HLine(f, $"{threshold:P0} of full attention", lo, hi, threshold * full * 100, "#d62728", "dash");
        }
        if (chance is { } c) HLine(f, "chance", lo, hi, c * 100, "#bcbd22", "dot");
        return f;
    }

    /// <summary>A horizontal reference line drawn as a two-point trace (it then has a legend entry).</summary>
    public static Figure HLine(Figure f, string name, double x0, double x1, double y, string color, string dash) =>
        f.AddTrace(new JsonObject
        {
            ["type"] = "scatter", ["mode"] = "lines", ["name"] = name,
            ["x"] = Figure.Numbers([x0, x1]), ["y"] = Figure.Numbers([y, y]),
            ["line"] = new JsonObject { ["color"] = color, ["dash"] = dash, ["width"] = 1.5 },
        });
}
