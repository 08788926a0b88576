namespace KvNotebooks.Eviction;

/// <summary>
/// SnapKV (Li et al. 2024; docs/methods.md, "SnapKV"): a KV's score is the attention it receives from the last k
/// queries (the observation window), summed over the window and smoothed by an average pool of width
/// <see cref="PoolKernel"/> (zero padding, divided by the kernel as <c>F.avg_pool1d</c> does); the
/// window's own KVs are always kept. Every layer gets the same budget. With GQA the pooled scores are
/// averaged over each group's query heads and one set is kept per KV head (the paper's "+C").
/// </summary>
public sealed class SnapKV : IKvScorer
{
    [ThreadStatic] private static float[]? _raw;

    /// <summary>Width of the average pool over the window's attention sums (paper code: 5).</summary>
    public static readonly Knob<int> PoolKnob = new("pool-kernel", "pool", 5, "snapkv/pyramidkv: average-pool kernel (odd)",
        k => k >= 1 && k % 2 == 1 ? null : "must be odd and ≥ 1");

    public static MethodDescriptor Descriptor { get; } = MethodDescriptor.TokenScorer("snapkv",
        "SnapKV: keep the KVs the last k queries attend to most (pooled), the same budget in every layer",
        [PoolKnob], s => new SnapKV(s.Get(PoolKnob)));

    public SnapKV(int poolKernel = 5)
    {
        if (poolKernel < 1 || poolKernel % 2 == 0) throw new ArgumentException($"--pool-kernel must be odd and ≥ 1 (got {poolKernel})");
        PoolKernel = poolKernel;
    }

    public int PoolKernel { get; }
    public string Name => "snapkv";
    public ScoreQueries Queries => ScoreQueries.Window;

    public void Score(in ScoreInput input, Span<float> scores) => PooledWindowScores(input, PoolKernel, scores);

    /// <summary>SnapKV's score, shared with PyramidKV: window attention sums, average-pooled.</summary>
    public static void PooledWindowScores(in ScoreInput input, int kernel, Span<float> scores)
    {
        int n = scores.Length;
        var raw = _raw is { } r && r.Length >= n ? r : _raw = new float[Math.Max(n, 64)];
        WindowAttention.Sum(input, raw.AsSpan(0, n));
        AvgPool(raw.AsSpan(0, n), kernel, scores);
    }

    /// <summary>y[i] = (1/K) Σ_{|j − i| ≤ K/2} x[j], zeros outside the sequence (avg_pool1d, stride 1,
    /// padding K/2, count_include_pad).</summary>
    public static void AvgPool(ReadOnlySpan<float> x, int kernel, Span<float> y)
    {
        int n = x.Length, half = kernel / 2;
        double window = 0;
        for (int j = 0; j < Math.Min(half, n); j++) window += x[j];
        for (int i = 0; i < n; i++)
        {
            if (i + half < n) window += x[i + half];
            if (i - half - 1 >= 0) window -= x[i - half - 1];
            y[i] = (float)(window / kernel);
        }
    }
}
