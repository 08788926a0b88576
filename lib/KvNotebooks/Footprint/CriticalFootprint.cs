using System.Globalization;

namespace KvNotebooks.Footprint;

public enum CriticalKind { Exact, Above, Below }

/// <summary>A critical KV footprint: a value, or a bound when the sweep did not bracket it
/// (">93.0": no swept point reached the target; "&lt;34.0": the smallest swept footprint already did).</summary>
public sealed record CriticalFootprintResult(double Value, CriticalKind Kind)
{
    /// <summary>The score the curve had to reach: threshold × full attention's score.</summary>
    public double Target { get; init; } = double.NaN;

    /// <summary>True when some swept point at a larger footprint than <see cref="Value"/> scores below the target:
    /// the curve first reaches the target, then dips under it again (an uneven curve; its bootstrap interval says how
    /// much to trust the value).</summary>
    public bool DipsAbove { get; init; }

    /// <summary>Where the interpolated curve reaches the target, (footprint, target score), for drawing the crossing;
    /// null for a bound.</summary>
    public (double Footprint, double Score)? Crossing => Kind == CriticalKind.Exact ? (Value, Target) : null;

    /// <summary>Percent with one decimal, prefixed by '>' or '&lt;' for bounds (as in the paper's Table 2).</summary>
    public override string ToString()
    {
        string v = (Value * 100).ToString("F1", CultureInfo.InvariantCulture);
        return Kind switch { CriticalKind.Above => ">" + v, CriticalKind.Below => "<" + v, _ => v };
    }

    /// <summary>Orders results from the smallest footprint to the largest: a "&lt;x" bound before any value at x, a
    /// "&gt;x" bound after (for bootstrap percentiles over results that mix values and bounds).</summary>
    public static int Compare(CriticalFootprintResult a, CriticalFootprintResult b)
    {
        int c = a.Value.CompareTo(b.Value);
        return c != 0 ? c : Rank(a.Kind).CompareTo(Rank(b.Kind));
        static int Rank(CriticalKind k) => k switch { CriticalKind.Below => 0, CriticalKind.Exact => 1, _ => 2 };
    }
}

/// <summary>
/// The critical KV footprint (docs/footprint.md, "Critical footprint"): the smallest footprint at which a method keeps
/// a fraction (0.9) of full attention's score, read off the method's curve drawn as straight lines between its swept
/// points (the paper's Table 2). Points are sorted by footprint; the target is threshold × full score.
/// <list type="bullet">
/// <item>the smallest-footprint point reaches the target: "&lt;smallest" (the sweep did not go low enough);</item>
/// <item>otherwise the first segment, going up in footprint, whose upper end reaches the target holds the answer: the
/// footprint where the line from its lower (failing) end to its upper end crosses the target;</item>
/// <item>no point reaches the target: "&gt;largest".</item>
/// </list>
/// A point at a larger footprint that falls below the target again does not change the value (it sets
/// <see cref="CriticalFootprintResult.DipsAbove"/>): "the smallest footprint that still scores ≥ 90 %".
/// </summary>
public static class CriticalFootprint
{
    public static CriticalFootprintResult Find(IEnumerable<(double Footprint, double Score)> points, double fullScore, double threshold = 0.9)
    {
        var p = points.OrderBy(x => x.Footprint).ToArray();
        if (p.Length == 0) throw new ArgumentException("critical footprint needs at least one (footprint, score) point");
        if (p.Any(x => double.IsNaN(x.Footprint) || double.IsNaN(x.Score)) || double.IsNaN(fullScore) || double.IsNaN(threshold))
            throw new ArgumentException("critical footprint: NaN in the points, full score or threshold");
        double target = threshold * fullScore;
        int i = Array.FindIndex(p, x => x.Score >= target);
        if (i < 0) return new(p[^1].Footprint, CriticalKind.Above) { Target = target };
        bool dips = p.Skip(i + 1).Any(x => x.Score < target);
        if (i == 0) return new(p[0].Footprint, CriticalKind.Below) { Target = target, DipsAbove = dips };
        var (hiF, hiS) = p[i];
        var (loF, loS) = p[i - 1];
        double f = loF + (target - loS) / (hiS - loS) * (hiF - loF);
        return new(f, CriticalKind.Exact) { Target = target, DipsAbove = dips };
    }
}
