using KvNotebooks.Model;

namespace KvNotebooks.Eviction;

/// <summary>Every knob of every method and schedule, with the paper's defaults (plain data).</summary>
public sealed record MethodSettings
{
    /// <summary>Streaming heads: sink tokens S.</summary>
    public int Sink { get; init; } = 128;
    /// <summary>Streaming heads: local window W.</summary>
    public int Window { get; init; } = 1024;
    /// <summary>headmask: 0/1 TSV, layers × KV heads.</summary>
    public string? MasksPath { get; init; }
    /// <summary>Score-based methods: when they evict and how much (null: post-fill, evict 0.5, window 64).</summary>
    public EvictionSchedule? Schedule { get; init; }
    /// <summary>SnapKV / PyramidKV: average-pool kernel.</summary>
    public int PoolKernel { get; init; } = 5;
    /// <summary>PyramidKV: β.</summary>
    public int Beta { get; init; } = 20;
    /// <summary>ZigZagKV: attention mass LMBA must reach.</summary>
    public double LmbaThreshold { get; init; } = 0.9;
    /// <summary>ZigZagKV: B_min as a fraction of the average budget.</summary>
    public double MinBudgetFraction { get; init; } = 0.2;
    /// <summary>L2: first layers never pruned (paper code: 2).</summary>
    public int SkipLayers { get; init; } = 2;
    /// <summary>Score-based methods: store one copy per query head (original SnapKV) instead of one per KV head.</summary>
    public bool ReplicatePerQueryHead { get; init; }
    /// <summary>Quantized KV: bits, group size, full-precision recent window.</summary>
    public int Bits { get; init; } = 4;
    public int GroupSize { get; init; } = 32;
    public int Residual { get; init; } = 128;
}

/// <summary>Builds an eviction method from command-line style options.</summary>
public static class MethodFactory
{
    public static readonly string[] Names = ["full", "streaming", "headmask", "snapkv", "pyramidkv", "h2o", "l2", "zigzag", "quantized"];
    /// <summary>The score-based methods (they take a schedule).</summary>
    public static readonly string[] ScoredNames = ["snapkv", "pyramidkv", "h2o", "l2", "zigzag"];

    /// <param name="name">full | streaming | headmask.</param>
    /// <param name="config">The model the method will run on (mask shapes are checked against it).</param>
    /// <param name="sink">Streaming heads: sink tokens.</param>
    /// <param name="window">Streaming heads: local window.</param>
    /// <param name="masksPath">0/1 TSV (layers × KV heads) for headmask.</param>
    public static IEvictionMethod Create(string name, LlamaConfig config, int sink = 128, int window = 1024, string? masksPath = null) =>
        Create(name, config, new MethodSettings { Sink = sink, Window = window, MasksPath = masksPath });

    /// <summary>Any method by name, every knob in <paramref name="s"/>.</summary>
    public static IEvictionMethod Create(string name, LlamaConfig config, MethodSettings s)
    {
        string n = name.ToLowerInvariant();
        if (!ScoredNames.Contains(n) && s.ReplicatePerQueryHead)
            throw new ArgumentException($"--gqa replicated applies to the score-based methods ({string.Join(", ", ScoredNames)}), not '{name}'");
        switch (n)
        {
            case "full":
                return new FullAttention();
            case "streaming":
                return new Streaming(s.Sink, s.Window);
            case "headmask":
            case "duo":
            case "prulong":
                if (s.MasksPath is null) throw new ArgumentException($"method '{name}' needs --masks FILE.tsv (one row per layer, one 0/1 column per KV head)");
                return new HeadMask(HeadMask.LoadTsv(s.MasksPath, config), s.Sink, s.Window);
            case "quantized":
            case "kivi":
                var q = new QuantizedKv(s.Bits, s.GroupSize, s.Residual);
                q.Quantization.Validate(config.HeadDim);
                return q;
        }
        IKvScorer scorer = n switch
        {
            "snapkv" => new SnapKV(s.PoolKernel),
            "pyramidkv" => new PyramidKV(s.PoolKernel, s.Beta),
            "h2o" => new H2O(),
            "l2" => new L2Norm(s.SkipLayers),
            "zigzag" or "zigzagkv" => new ZigZagKV(s.LmbaThreshold, s.MinBudgetFraction),
            _ => throw new ArgumentException($"unknown method '{name}'; choose one of {string.Join(", ", Names)}"),
        };
        var schedule = s.Schedule ?? EvictionSchedule.PostFill(EvictionBudget.Fraction(0.5));
        return new ScheduledEviction(scorer, schedule, s.ReplicatePerQueryHead);
    }
}
