using KvNotebooks.Cache;

namespace KvNotebooks.Eviction;

/// <summary>Which queries a scorer needs.</summary>
public enum ScoreQueries
{
    /// <summary>None: scores come from the keys alone (L2 norm).</summary>
    None,
    /// <summary>The last <see cref="EvictionSchedule.Window"/> queries (SnapKV, PyramidKV, ZigZagKV).</summary>
    Window,
    /// <summary>Every query row of every step (H2O's accumulated attention).</summary>
    AllRows,
}

/// <summary>
/// What a scorer sees for one stored head: candidates [<see cref="From"/>, <see cref="End"/>) of
/// <see cref="Cache"/>, of which [<see cref="From"/>, <see cref="To"/>) are scored and [<see cref="To"/>,
/// <see cref="End"/>) is the always-kept window; the query rows (post-RoPE, [rows × QDim]) with their
/// positions; and which query heads read this stored head (a GQA group, or one head when replicated).
/// </summary>
public readonly ref struct ScoreInput
{
    public int Layer { get; init; }
    public int Head { get; init; }
    public KvHeadCache Cache { get; init; }
    public int From { get; init; }
    public int To { get; init; }
    public int End { get; init; }
    public ReadOnlySpan<float> Queries { get; init; }
    public ReadOnlySpan<int> QueryPositions { get; init; }
    public int QDim { get; init; }
    public int FirstQueryHead { get; init; }
    public int QueryHeads { get; init; }
    /// <summary>1/√headDim, the attention scale.</summary>
    public float Scale { get; init; }
    /// <summary>Entries of the head before <see cref="Cache"/>'s first (quantized ones a full-precision view leaves out):
    /// entry i of <see cref="Cache"/> is entry i + IndexOffset of the head, the index <see cref="IKvScorer.OnKept"/> uses.</summary>
    public int IndexOffset { get; init; }
}

/// <summary>How a budget is split over layers: <see cref="Capacity"/> entries kept of
/// <see cref="Candidates"/> per head on average, the last <see cref="Window"/> always kept.</summary>
public readonly record struct BudgetInput(int Capacity, int Candidates, int Window, int NumLayers)
{
    /// <summary>Scored entries kept per layer on average: capacity − window.</summary>
    public int Average => Capacity - Window;
    /// <summary>Scored candidates per layer: candidates − window (no layer can keep more).</summary>
    public int Max => Candidates - Window;
}

/// <summary>
/// A score-based KV eviction method (kvpress's "press"): how it scores KVs and how a budget splits over
/// layers. When it runs is the <see cref="EvictionSchedule"/>'s job (<see cref="ScheduledEviction"/>).
/// Higher scores are kept; scores are per stored head, already combined over the query heads reading it.
/// </summary>
public interface IKvScorer
{
    string Name { get; }
    ScoreQueries Queries { get; }
    /// <summary>True when layer budgets depend on every layer's scores (ZigZagKV): the schedule then scores
    /// all layers and evicts at the end of the step.</summary>
    bool NeedsAllLayers => false;
    /// <summary>A scorer with per-run state returns a fresh copy.</summary>
    IKvScorer ForSession() => this;
    /// <summary>Called once per run before the first step, with the cache's shape.</summary>
    void Begin(int numLayers, int numHeads) { }
    /// <summary>Every step, for <see cref="ScoreQueries.AllRows"/> scorers: all of the step's queries over
    /// all of a head's entries (<c>From = 0</c>, <c>To = End = Count</c>), before any eviction.</summary>
    void Observe(in ScoreInput input) { }
    /// <summary>Every step and layer, before anything is evicted, with the whole layer: a scorer that predicts each new
    /// entry's score from its own q, k and v (Locret's retaining heads) computes it here.</summary>
    void ObserveStep(in LayerStep step) { }
    /// <summary>A head was compacted to the entries at <paramref name="kept"/> (indices before compaction).</summary>
    void OnKept(int layer, int head, ReadOnlySpan<int> kept) { }
    /// <summary>Scores of candidates [From, To): <paramref name="scores"/>[i − From].</summary>
    void Score(in ScoreInput input, Span<float> scores);
    /// <summary>Scored entries each layer keeps (the window comes on top); default: the same for all. Called whenever the
    /// capacity is below the candidates, also when it does not exceed the window (<see cref="BudgetInput.Average"/> ≤ 0:
    /// a layer that is pruned then keeps none).</summary>
    void LayerBudgets(in BudgetInput input, Span<int> keep) => LayerBudget.Uniform(input, keep);
}
