namespace KvNotebooks.Eviction;

/// <summary>
/// PyramidKV (Cai et al. 2024; docs/methods.md, "PyramidKV"): SnapKV's scores, with budgets that decrease linearly over
/// layers. As in the paper's code: with average a = capacity − window and β = 20, min = a // β and
/// max = 2a − min (max clipped to the candidates, min then 2a − max); a chunk shorter than 2a gets
/// SnapKV's equal budgets. Layer l's target is max − l·(max − min)/(L − 1). The code's integer step makes
/// the layer budgets sum to slightly more than L·a; here they are rounded (largest remainder) so they
/// sum to exactly L·a, i.e. the average equals the budget as the paper states.
/// </summary>
public sealed class PyramidKV : IKvScorer
{
    /// <summary>β: the smallest layer budget is the average's 1/β (paper code: 20).</summary>
    public static readonly Knob<int> BetaKnob = new("beta", "beta", 20, "pyramidkv: β (min budget = average / β)", b => b >= 1 ? null : "must be ≥ 1");

    public static MethodDescriptor Descriptor { get; } = MethodDescriptor.TokenScorer("pyramidkv",
        "PyramidKV: SnapKV's scores, with budgets that shrink linearly from the first layer to the last",
        [SnapKV.PoolKnob, BetaKnob], s => new PyramidKV(s.Get(SnapKV.PoolKnob), s.Get(BetaKnob)));

    public PyramidKV(int poolKernel = 5, int beta = 20)
    {
        if (poolKernel < 1 || poolKernel % 2 == 0) throw new ArgumentException($"--pool-kernel must be odd and ≥ 1 (got {poolKernel})");
        if (beta < 1) throw new ArgumentException($"--beta must be ≥ 1 (got {beta})");
        PoolKernel = poolKernel;
        Beta = beta;
    }

    public int PoolKernel { get; }
    public int Beta { get; }
    public string Name => "pyramidkv";
    public ScoreQueries Queries => ScoreQueries.Window;

    public void Score(in ScoreInput input, Span<float> scores) => SnapKV.PooledWindowScores(input, PoolKernel, scores);

    public void LayerBudgets(in BudgetInput b, Span<int> keep)
    {
        int a = b.Average, L = b.NumLayers;
        if (L == 1 || a <= 0 || b.Candidates < 2 * a)
        {
            LayerBudget.Uniform(b, keep);
            return;
        }
        int min = a / Beta, max = 2 * a - min;
        if (max >= b.Max)
        {
            max = b.Max;
            min = 2 * a - max;
        }
        Span<double> targets = stackalloc double[L];
        for (int l = 0; l < L; l++) targets[l] = max - (double)l * (max - min) / (L - 1);
        LayerBudget.Allocate(targets, (long)L * a, b.Max, keep);
    }

    /// <summary>The budgets of the paper's code for comparison: max − l·((max − min) // (L − 1)).</summary>
    public int[] ReferenceCodeBudgets(in BudgetInput b)
    {
        int a = b.Average, L = b.NumLayers;
        int min = a / Beta, max = 2 * a - min;
        if (max >= b.Max) { max = b.Max; min = 2 * a - max; }
        int steps = L > 1 ? (max - min) / (L - 1) : 0;
        return Enumerable.Range(0, L).Select(l => max - l * steps).ToArray();
    }
}
