using System.Globalization;

namespace KvNotebooks.Footprint;

public enum CriticalKind { Exact, Above, Below }

/// <summary>A critical KV footprint: a value, or a bound when the sweep did not bracket it
/// (">93.0": even the largest swept footprint fell short; "&lt;34.0": the smallest still held).</summary>
public sealed record CriticalFootprintResult(double Value, CriticalKind Kind)
{
    /// <summary>Percent with one decimal, prefixed by '>' or '&lt;' for bounds (as in the paper's Table 2).</summary>
    public override string ToString()
    {
        string v = (Value * 100).ToString("F1", CultureInfo.InvariantCulture);
        return Kind switch { CriticalKind.Above => ">" + v, CriticalKind.Below => "<" + v, _ => v };
    }
}

/// <summary>
/// The critical KV footprint (PAPER.md §1.1): the smallest footprint at which a method keeps a fraction
/// (0.9) of full-attention performance, by linear interpolation between swept points (Table 2).
/// Definition used here: points sorted by footprint; starting from the largest footprint and moving
/// down, the method "holds" while each point scores ≥ threshold · fullScore. The answer is the footprint
/// where the straight line between the last holding point and the next (failing) one crosses the target.
/// If the largest-footprint point already fails: ">largest". If every point holds: "&lt;smallest".
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
        int i = p.Length - 1;
        if (p[i].Score < target) return new(p[i].Footprint, CriticalKind.Above);
        while (i > 0 && p[i - 1].Score >= target) i--;
        if (i == 0) return new(p[0].Footprint, CriticalKind.Below);
        var (hiF, hiS) = p[i];
        var (loF, loS) = p[i - 1];
        double f = loF + (target - loS) / (hiS - loS) * (hiF - loF);
        return new(f, CriticalKind.Exact);
    }
}
