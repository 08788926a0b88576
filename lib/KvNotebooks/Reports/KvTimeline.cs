using KvNotebooks.Inference;

namespace KvNotebooks.Reports;

/// <summary>
/// The per-step timeline of a run (<see cref="FootprintMeter.Steps"/>) as figures: one line per run against the
/// sequence rows processed, two points per pre-fill chunk or decode step — what the cache held while the step
/// attended (the step's own KVs and patch included: the peak is taken here) and what it kept after eviction, at the
/// same x. Within a step the line rises to the first and drops to the second, so chunked eviction draws a saw-tooth
/// that stays low, and post-fill eviction a full-height climb with one drop at the end of pre-fill.
/// </summary>
public static class KvTimeline
{
    /// <summary>Entries held, summed over heads: while each step attended, then after its eviction.</summary>
    public static Figure Entries(params (string Name, IReadOnlyList<StepRecord> Steps)[] runs)
    {
        var f = Figure.Line("Live KV entries: while each step attends, then after its eviction", "tokens processed", "entries held (all heads)");
        foreach (var (name, steps) in runs)
            f.AddLine(name, Twice(steps.Select(s => (double)s.RowsSoFar)),
                steps.SelectMany(s => new[] { (double)s.EntriesWhileAttending, s.EntriesAfterEviction }), markers: false);
        return f;
    }

    /// <summary>Bytes the cache really held (its allocation, pages + codes): the most during each step, then after it.</summary>
    public static Figure Bytes(params (string Name, IReadOnlyList<StepRecord> Steps)[] runs)
    {
        var f = Figure.Line("KV bytes held: the most during each step, then after its eviction", "tokens processed", "bytes held");
        foreach (var (name, steps) in runs)
            f.AddLine(name, Twice(steps.Select(s => (double)s.RowsSoFar)),
                steps.SelectMany(s => new[] { (double)s.StepPeakBytes, s.AllocatedBytes }), markers: false);
        return f;
    }

    /// <summary>Each x twice: the step's two points share it.</summary>
    private static IEnumerable<double> Twice(IEnumerable<double> xs) => xs.SelectMany(x => new[] { x, x });
}
