using System.CommandLine;
using KvNotebooks.Evaluation;
using KvNotebooks.Eviction;
using KvNotebooks.Model;

namespace KvNotebooks.Cli.Commands;

/// <summary>The options that choose an eviction method, its schedule and a chunk size, shared by run and logits.</summary>
internal sealed class MethodOptions
{
    public readonly Option<int?> Chunk = new("--chunk") { Description = "Pre-fill chunk size C (default: a single pre-fill)" };
    public readonly Option<string> Method = new("--method") { Description = string.Join(" | ", MethodFactory.Names), DefaultValueFactory = _ => "full" };
    public readonly Option<int> Sink = new("--sink") { Description = "Streaming heads: sink tokens S", DefaultValueFactory = _ => 128 };
    public readonly Option<int> Window = new("--window") { Description = "Streaming heads: local window W", DefaultValueFactory = _ => 1024 };
    public readonly Option<string?> Masks = new("--masks") { Description = "headmask: 0/1 TSV, one row per layer, one column per KV head (1 = full)" };
    public readonly Option<int> PoolKernel = new("--pool-kernel") { Description = "snapkv/pyramidkv: average-pool kernel (odd)", DefaultValueFactory = _ => 5 };
    public readonly Option<int> Beta = new("--beta") { Description = "pyramidkv: β (min budget = average / β)", DefaultValueFactory = _ => 20 };
    public readonly Option<double> LmbaThreshold = new("--lmba-threshold") { Description = "zigzag: attention mass LMBA must reach", DefaultValueFactory = _ => 0.9 };
    public readonly Option<double> MinBudget = new("--min-budget-fraction") { Description = "zigzag: B_min as a fraction of the average budget", DefaultValueFactory = _ => 0.2 };
    public readonly Option<int> SkipLayers = new("--skip-layers") { Description = "l2: first layers never pruned (paper code: 2)", DefaultValueFactory = _ => 2 };
    public readonly Option<string> Gqa = new("--gqa") { Description = "Score-based methods: shared (one kept set per KV head, scores averaged over the group; the paper's +C) | replicated (one copy per query head, as the original code)", DefaultValueFactory = _ => "shared" };
    public readonly ScheduleOptions Schedule = new();
    public readonly QuantOptions Quant = new();

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { Chunk, Method, Sink, Window, Masks }) cmd.Options.Add(o);
        foreach (var o in Schedule.All) cmd.Options.Add(o);
        foreach (var o in new Option[] { PoolKernel, Beta, LmbaThreshold, MinBudget, SkipLayers, Gqa }) cmd.Options.Add(o);
        foreach (var o in Quant.All) cmd.Options.Add(o);
    }

    public IEvictionMethod CreateMethod(ParseResult p, LlamaConfig config) => Spec(p).Create(config);

    /// <summary>The method and every knob as plain data (validated except for model-dependent checks).</summary>
    public MethodSpec Spec(ParseResult p)
    {
        string name = p.GetValue(Method)!.ToLowerInvariant();
        bool scored = MethodFactory.ScoredNames.Contains(name) || name == "zigzagkv";
        bool quantized = name is "quantized" or "kivi";
        if (!scored && Schedule.AnyGiven(p))
            throw new ArgumentException($"--schedule, --evict, --budget and the decode options apply to the score-based methods ({string.Join(", ", MethodFactory.ScoredNames)}), not '{name}'");
        if (!quantized && Quant.AnyGiven(p))
            throw new ArgumentException($"--bits, --group-size and --residual apply to --method quantized, not '{name}'");
        string gqa = p.GetValue(Gqa)!.ToLowerInvariant();
        if (gqa is not ("shared" or "replicated")) throw new ArgumentException($"--gqa must be shared or replicated (got '{gqa}')");
        var settings = new MethodSettings
        {
            Sink = p.GetValue(Sink), Window = p.GetValue(Window), MasksPath = p.GetValue(Masks),
            Schedule = scored ? Schedule.Create(p, p.GetValue(Chunk) is not null) : null,
            PoolKernel = p.GetValue(PoolKernel), Beta = p.GetValue(Beta),
            LmbaThreshold = p.GetValue(LmbaThreshold), MinBudgetFraction = p.GetValue(MinBudget), SkipLayers = p.GetValue(SkipLayers),
            ReplicatePerQueryHead = gqa == "replicated",
            Bits = p.GetValue(Quant.Bits), GroupSize = p.GetValue(Quant.GroupSize), Residual = p.GetValue(Quant.Residual),
        };
        return new MethodSpec(name, settings);
    }

    public int ChunkSize(ParseResult p)
    {
        int? c = p.GetValue(Chunk);
        if (c is <= 0) throw new ArgumentException($"--chunk must be positive (got {c})");
        return c ?? int.MaxValue;
    }
}
