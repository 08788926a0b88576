namespace KvNotebooks.Eviction;

/// <summary>
/// L2-norm key eviction (Devoto et al. 2024; docs/methods.md, "L2 norm"): keep the recent window plus the keys with
/// the lowest L2 norm (in the models it was found on, low-norm keys draw high attention). No queries are needed. As in
/// the paper's <c>L2KVCache</c>, the first <see cref="SkipLayers"/> layers are never pruned, whatever the budget (so
/// with skipped layers the per-head average is above the budget; use 0 to compare with the footprint accountant).
/// On our model the premise fails: the keys with the largest norms are the delimiters of layers 0–1 and &lt;bos&gt; in
/// layers 2–3, and they are the ones that matter (docs/methods.md).
/// </summary>
public sealed class L2Norm : IKvScorer
{
    /// <summary>First layers never pruned (paper code: 2 of 32).</summary>
    public static readonly Knob<int> SkipLayersKnob = new("skip-layers", "skip-layers", 2, "l2: first layers never pruned (paper code: 2 of 32)",
        n => n >= 0 ? null : "must be ≥ 0");

    public static MethodDescriptor Descriptor { get; } = MethodDescriptor.TokenScorer("l2",
        "L2 norm: keep the keys with the lowest L2 norm, no queries needed",
        [SkipLayersKnob], s => new L2Norm(s.Get(SkipLayersKnob)));

    public L2Norm(int skipLayers = 2)
    {
        if (skipLayers < 0) throw new ArgumentException($"--skip-layers must be ≥ 0 (got {skipLayers})");
        SkipLayers = skipLayers;
    }

    public int SkipLayers { get; }
    public string Name => "l2";
    public ScoreQueries Queries => ScoreQueries.None;

    public void Score(in ScoreInput input, Span<float> scores)
    {
        for (int i = input.From; i < input.To; i++)
            scores[i - input.From] = -System.Numerics.Tensors.TensorPrimitives.Norm(input.Cache.Key(i));
    }

    public void LayerBudgets(in BudgetInput b, Span<int> keep)
    {
        LayerBudget.Uniform(b, keep);
        for (int l = 0; l < Math.Min(SkipLayers, keep.Length); l++) keep[l] = b.Max;
    }
}
