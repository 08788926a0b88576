namespace KvNotebooks.Eviction;

/// <summary>
/// ZigZagKV (Zhong et al., COLING 2025): layer budgets from layer uncertainty. Per layer, LMBA (layer
/// minimum budget for attention) is the fewest KVs whose attention mass from the observation window
/// reaches <see cref="Threshold"/> of the total (averaged over the layer's stored heads);
/// u_l = LMBA_l / Σ LMBA; budget_l = B_min + (B_avg − B_min)·L·u_l with B_min = <see cref="MinFraction"/>·B_avg,
/// so the budgets sum to L·B_avg (clipped to what a layer has, the excess going to the others; rounded
/// to integers that sum exactly). Within a layer, KVs are chosen by accumulated window attention (no
/// pooling); the window is always kept. Budgets need every layer's LMBA, so a pre-fill step is scored
/// layer by layer and evicted at its end — every layer holds the step's KVs until then, which the
/// measured peak shows.
/// </summary>
public sealed class ZigZagKV : IKvScorer
{
    public static readonly Knob<double> LmbaKnob = new("lmba-threshold", "lmba", 0.9, "zigzag: attention mass LMBA must reach",
        t => t > 0 && t <= 1 ? null : "must be in (0, 1]");
    public static readonly Knob<double> MinBudgetKnob = new("min-budget-fraction", "min-budget", 0.2, "zigzag: B_min as a fraction of the average budget",
        f => f >= 0 && f <= 1 ? null : "must be in [0, 1]");

    public static MethodDescriptor Descriptor { get; } = MethodDescriptor.TokenScorer("zigzag",
        "ZigZagKV: SnapKV's scores, with layer budgets set by how many KVs each layer needs to cover its attention mass",
        [LmbaKnob, MinBudgetKnob], s => new ZigZagKV(s.Get(LmbaKnob), s.Get(MinBudgetKnob))) with { Aliases = ["zigzagkv"] };

    private double[][]? _lmba;   // [layer][head]
    [ThreadStatic] private static float[]? _sorted;

    public ZigZagKV(double threshold = 0.9, double minFraction = 0.2)
    {
        if (!(threshold > 0 && threshold <= 1)) throw new ArgumentException($"--lmba-threshold must be in (0, 1] (got {threshold})");
        if (!(minFraction >= 0 && minFraction <= 1)) throw new ArgumentException($"--min-budget-fraction must be in [0, 1] (got {minFraction})");
        Threshold = threshold;
        MinFraction = minFraction;
    }

    public double Threshold { get; }
    public double MinFraction { get; }
    public string Name => "zigzag";
    public ScoreQueries Queries => ScoreQueries.Window;
    public bool NeedsAllLayers => true;
    public IKvScorer ForSession() => new ZigZagKV(Threshold, MinFraction);

    public void Begin(int numLayers, int numHeads)
    {
        _lmba = new double[numLayers][];
        for (int l = 0; l < numLayers; l++) _lmba[l] = new double[numHeads];
    }

    public void Score(in ScoreInput input, Span<float> scores)
    {
        WindowAttention.Sum(input, scores);
        _lmba![input.Layer][input.Head] = Lmba(scores, Threshold);
    }

    /// <summary>The fewest entries whose mass reaches <paramref name="threshold"/> of the total.</summary>
    public static int Lmba(ReadOnlySpan<float> mass, double threshold)
    {
        var sorted = _sorted is { } s && s.Length >= mass.Length ? s : _sorted = new float[Math.Max(mass.Length, 64)];
        var span = sorted.AsSpan(0, mass.Length);
        mass.CopyTo(span);
        span.Sort();
        double total = 0;
        foreach (float v in span) total += v;
        if (total <= 0) return 0;
        double acc = 0;
        for (int k = 1; k <= span.Length; k++)
        {
            acc += span[^k];
            if (acc >= threshold * total * (1 - 1e-12)) return k;
        }
        return span.Length;
    }

    /// <summary>LMBA of each layer (mean over its heads) from the last scored step.</summary>
    public double[] LayerLmba() => _lmba!.Select(h => h.Average()).ToArray();

    public void LayerBudgets(in BudgetInput b, Span<int> keep)
    {
        var lmba = LayerLmba();
        double sum = lmba.Sum(), avg = Math.Max(b.Average, 0), bmin = MinFraction * avg;
        int L = b.NumLayers;
        Span<double> targets = stackalloc double[L];
        for (int l = 0; l < L; l++) targets[l] = sum > 0 ? bmin + (avg - bmin) * L * lmba[l] / sum : avg;
        LayerBudget.Allocate(targets, (long)L * b.Average, b.Max, keep);
    }
}
