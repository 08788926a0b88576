using System.Text.Json.Nodes;
using KvNotebooks.Evaluation;
using KvNotebooks.Footprint;

namespace KvNotebooks.Reports;

/// <summary>
/// Figures of sweep results as the paper draws them (Fig. 3): score against KV footprint (or peak KV),
/// one curve per method with 95 % bootstrap error bars, where each curve first reaches the target marked on it,
/// a black line at full attention's score, a red one at the threshold (90% of it) and a grey dotted one at chance.
/// The reference lines' colours are never method colours (<see cref="MethodColors"/>).
/// </summary>
public static class SweepFigures
{
    /// <summary>Colours of the method curves, in order of appearance (after ten they repeat, dotted).</summary>
    public static readonly IReadOnlyList<string> MethodColors =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939"];

    /// <summary>Full attention's score: black, solid.</summary>
    public const string FullAttentionColor = "#000000";
    /// <summary>The threshold (90 % of full attention): red, dashed.</summary>
    public const string ThresholdColor = "#d62728";
    /// <summary>Chance: grey, dotted.</summary>
    public const string ChanceColor = "#7f7f7f";

    /// <summary>
    /// One category: a line per method (its points sorted by <paramref name="x"/>, hover text the swept value, error bars
    /// from each point's <see cref="CategoryPoint.ScoreEstimate"/> when it has one), with horizontal lines for full
    /// attention, <paramref name="threshold"/> × full attention and chance when given. With a full-attention score, each
    /// curve's crossing (where its interpolated line first reaches the threshold, the critical footprint when
    /// <paramref name="x"/> is the footprint) is marked on it; <paramref name="criticals"/> (by method label, e.g. from
    /// <see cref="SweepAnalysis.CriticalFootprints"/>) adds the crossing's bootstrap interval as a horizontal bar.
    /// <paramref name="x"/> defaults to the footprint; axes are in percent. <paramref name="style"/> gives a curve's colour
    /// and dash by its label (e.g. one colour per method, one dash per chunk size); by default curves take
    /// <see cref="MethodColors"/> in order.
    /// </summary>
    public static Figure ScoreVs(IEnumerable<CategoryPoint> points, string category, double? fullScore, double? chance = null,
        double threshold = 0.9, Func<CategoryPoint, double>? x = null, string xTitle = "KV footprint (%)", string? title = null,
        IReadOnlyDictionary<string, CategoryCritical>? criticals = null, Func<string, (string Color, string Dash)>? style = null)
    {
        x ??= p => p.Footprint;
        var pts = points.Where(p => p.Category == category).ToList();
        var f = Figure.Scatter(title ?? $"{category}: score vs {xTitle.Replace(" (%)", "")}", xTitle, $"{category} score (%)");
        int index = 0;
        foreach (var curve in pts.GroupBy(p => p.Method))
        {
            var (color, dash) = style?.Invoke(curve.Key) ?? (MethodColors[index % MethodColors.Count], index < MethodColors.Count ? "solid" : "dot");
            index++;
            var sorted = curve.OrderBy(x).ToList();
            var trace = new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "lines+markers", ["name"] = curve.Key,
                ["x"] = Figure.Numbers(sorted.Select(p => x(p) * 100)), ["y"] = Figure.Numbers(sorted.Select(p => p.Score * 100)),
                ["text"] = Figure.Strings(sorted.Select(p => p.Point)),
                ["line"] = new JsonObject { ["color"] = color, ["dash"] = dash },
                ["marker"] = new JsonObject { ["color"] = color },
            };
            if (sorted.Any(p => p.ScoreEstimate is { HasInterval: true }))
                trace["error_y"] = ErrorBars(sorted.Select(p => p.ScoreEstimate is { HasInterval: true } e ? (p.Score - e.Lo, e.Hi - p.Score) : (double.NaN, double.NaN)), color);
            f.AddTrace(trace);
            if (fullScore is { } full)
                AddCrossing(f, curve.Key, sorted.Select(p => (x(p), p.Score)).ToList(), full, threshold, color,
                    criticals is not null && criticals.TryGetValue(curve.Key, out var k) ? k.Interval : null);
        }
        double lo = pts.Count == 0 ? 0 : Math.Min(0, pts.Min(x) * 100), hi = pts.Count == 0 ? 100 : Math.Max(100, pts.Max(x) * 100);
        if (fullScore is { } fs)
        {
            HLine(f, "full attention", lo, hi, fs * 100, FullAttentionColor, "solid");
            HLine(f, $"{threshold:P0} of full attention", lo, hi, threshold * fs * 100, ThresholdColor, "dash");
        }
        if (chance is { } c) HLine(f, "chance", lo, hi, c * 100, ChanceColor, "dot");
        return f;
    }

    /// <summary>
    /// Paired differences A − B (from <see cref="SweepAnalysis.Compare"/>) against the swept value: one line per series
    /// label (e.g. the context, or the example set), the swept values as categories in the order first given, each point with its paired 95 % bootstrap interval as error bars, and a black line at zero (no
    /// difference). A point whose interval lies wholly above or below zero is drawn filled, one whose interval holds zero
    /// open. Differences are in points (fractions × 100).
    /// </summary>
    public static Figure PairedDifferences(IEnumerable<(string Series, CategoryComparison Comparison)> comparisons,
        string title, string yTitle, string xTitle = "eviction rate")
    {
        var list = comparisons.ToList();
        var f = Figure.Line(title, xTitle, yTitle);
        var xs = list.Select(c => c.Comparison.Point).Distinct().ToList();
        int index = 0;
        foreach (var line in list.GroupBy(c => c.Series, c => c.Comparison))
        {
            string color = MethodColors[index++ % MethodColors.Count];
            var pts = line.OrderBy(c => xs.IndexOf(c.Point)).ToList();
            var symbols = pts.Select(c => c.Paired.HasInterval && (c.Paired.Lo > 0 || c.Paired.Hi < 0) ? "circle" : "circle-open");
            var trace = new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "lines+markers", ["name"] = line.Key,
                ["x"] = Figure.Strings(pts.Select(c => c.Point)), ["y"] = Figure.Numbers(pts.Select(c => c.Paired.Value * 100)),
                ["text"] = Figure.Strings(pts.Select(c => $"{c.Paired} (n = {c.Paired.N})")),
                ["line"] = new JsonObject { ["color"] = color },
                ["marker"] = new JsonObject { ["color"] = color, ["size"] = 9, ["symbol"] = Figure.Strings(symbols) },
            };
            if (pts.Any(c => c.Paired.HasInterval))
                trace["error_y"] = ErrorBars(pts.Select(c => c.Paired.HasInterval ? (c.Paired.Value - c.Paired.Lo, c.Paired.Hi - c.Paired.Value) : (double.NaN, double.NaN)), color);
            f.AddTrace(trace);
        }
        if (xs.Count > 0)
            f.AddTrace(new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "lines", ["name"] = "no difference",
                ["x"] = Figure.Strings([xs[0], xs[^1]]), ["y"] = Figure.Numbers([0, 0]),
                ["line"] = new JsonObject { ["color"] = FullAttentionColor, ["width"] = 1 },
            });
        return f;
    }

    /// <summary>The crossing of one curve: a diamond where its interpolated line first reaches threshold × full score
    /// (nothing when the sweep did not bracket it), with the interval as a horizontal bar when given.</summary>
    private static void AddCrossing(Figure f, string method, List<(double X, double Score)> curve, double full, double threshold, string color,
        CriticalInterval? interval)
    {
        var r = CriticalFootprint.Find(curve, full, threshold);
        if (r.Crossing is not { } at) return;
        var trace = new JsonObject
        {
            ["type"] = "scatter", ["mode"] = "markers", ["name"] = $"{method}: reaches {threshold:P0}", ["showlegend"] = false,
            ["x"] = Figure.Numbers([at.Footprint * 100]), ["y"] = Figure.Numbers([at.Score * 100]),
            ["text"] = Figure.Strings([$"{method} reaches {threshold:P0} of full attention at {r}" + (interval is null ? "" : $" (95 % CI {interval})")]),
            ["marker"] = new JsonObject { ["symbol"] = "diamond", ["size"] = 11, ["color"] = color, ["line"] = new JsonObject { ["color"] = FullAttentionColor, ["width"] = 1 } },
        };
        if (interval is not null)
            trace["error_x"] = ErrorBars([(Math.Max(0, at.Footprint - interval.Lo.Value), Math.Max(0, interval.Hi.Value - at.Footprint))], color);
        f.AddTrace(trace);
    }

    /// <summary>plotly error bars in percent: (below, above) each point, null where a point has none.</summary>
    private static JsonObject ErrorBars(IEnumerable<(double Below, double Above)> bars, string color)
    {
        var list = bars.ToList();
        return new JsonObject
        {
            ["type"] = "data", ["symmetric"] = false, ["visible"] = true,
            ["array"] = Figure.Numbers(list.Select(b => b.Above * 100)), ["arrayminus"] = Figure.Numbers(list.Select(b => b.Below * 100)),
            ["color"] = color, ["thickness"] = 1, ["width"] = 3,
        };
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
