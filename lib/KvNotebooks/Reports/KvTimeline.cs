using KvNotebooks.Inference;

namespace KvNotebooks.Reports;

/// <summary>
/// The per-step timeline of a run (<see cref="FootprintMeter.Steps"/>) as figures: one line per run
/// against the sequence rows processed, one point per pre-fill chunk or decode step. Post-fill eviction
/// shows a full-height pre-fill step and a drop afterwards; chunked eviction a saw-tooth that stays low.
/// </summary>
public static class KvTimeline
{
    /// <summary>Entries held while each step attended, summed over heads (what the peak KV is taken over).</summary>
    public static Figure Entries(params (string Name, IReadOnlyList<StepRecord> Steps)[] runs)
    {
        var f = Figure.Line("Live KV entries per step", "tokens processed", "entries held while attending (all heads)");
        foreach (var (name, steps) in runs)
            f.AddLine(name, steps.Select(s => (double)s.RowsSoFar), steps.Select(s => (double)s.EntriesWhileAttending));
        return f;
    }

    /// <summary>The most bytes the cache really held during each step (its allocation, pages + codes).</summary>
    public static Figure Bytes(params (string Name, IReadOnlyList<StepRecord> Steps)[] runs)
    {
        var f = Figure.Line("KV bytes held per step", "tokens processed", "peak bytes during the step");
        foreach (var (name, steps) in runs)
            f.AddLine(name, steps.Select(s => (double)s.RowsSoFar), steps.Select(s => (double)s.StepPeakBytes));
        return f;
    }
}
