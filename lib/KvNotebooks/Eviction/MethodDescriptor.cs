using KvNotebooks.Cache;
using KvNotebooks.Footprint;
using KvNotebooks.Model;

namespace KvNotebooks.Eviction;

/// <summary>What a method does to the KV cache, which decides what else it takes.</summary>
public enum MethodKind
{
    /// <summary>Nothing evicted, nothing changed: the baseline.</summary>
    Baseline,
    /// <summary>Scores KVs and keeps the best on a schedule (post-fill, chunked naive or patched): SnapKV,
    /// PyramidKV, H2O, L2, ZigZagKV, Locret. Takes the schedule options (<c>--schedule</c>, <c>--evict</c>, …).</summary>
    ScoresTokens,
    /// <summary>Makes some heads streaming (sinks + a local window) and leaves the rest full: StreamingLLM,
    /// DuoAttention, PruLong.</summary>
    MasksHeads,
    /// <summary>Keeps every KV but stores it differently (quantized KV).</summary>
    ChangesStorage,
}

/// <summary>The sequence an analytic count is for: n prompt tokens pre-filled as <see cref="Chunking"/> says, then
/// m generated; <see cref="KvHeads"/> is the model's head count when known (a head mask then counts whole heads).</summary>
public sealed record FootprintShape(int PromptTokens, int GenTokens, Chunking Chunking, int? KvHeads = null)
{
    /// <summary>The chunk plan of the prompt.</summary>
    public ChunkPlan Plan => Chunking.Plan(PromptTokens);
}

/// <summary>
/// A method declared once, in its own file, as a kvpress "press" is: its name and aliases, its kind, its knobs
/// (with defaults and validation), how to build it, how the analytic accountant counts it, and one line saying
/// what it does. <see cref="MethodRegistry"/> collects them; the CLI options of <c>kvnb run</c>, <c>eval</c>,
/// <c>sweep</c> and <c>footprint</c>, the canonical configuration lines of result rows, sweep grids, the
/// accountant and <c>kvnb methods list</c> are all generated from these.
/// </summary>
public sealed record MethodDescriptor
{
    /// <summary>Lower-case name, as in result rows: <c>pyramidkv</c>.</summary>
    public required string Name { get; init; }
    /// <summary>Other names accepted on the command line (<c>kivi</c> for quantized).</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];
    public required MethodKind Kind { get; init; }
    /// <summary>One line: what it keeps and how it decides.</summary>
    public required string Summary { get; init; }
    /// <summary>The method's own settings, in the order its configuration line lists them.</summary>
    public IReadOnlyList<Knob> Knobs { get; init; } = [];
    /// <summary>The knob a curve of this method sweeps (its value is the point's label), if any; a token scorer's
    /// curve runs along the schedule's eviction rate instead.</summary>
    public Knob? CurveKnob { get; init; }
    /// <summary><see cref="MethodKind.ScoresTokens"/>: how it scores KVs (the schedule around it comes from the
    /// configuration). Null for a method the accountant counts but the engine cannot run yet.</summary>
    public Func<MethodSpec, IKvScorer>? Scorer { get; init; }
    /// <summary>Other kinds: the method for a model (mask shapes are checked against <see cref="LlamaConfig"/>).</summary>
    public Func<MethodSpec, LlamaConfig, IEvictionMethod>? Create { get; init; }
    /// <summary><see cref="MethodKind.ChangesStorage"/>: how the method stores KVs.</summary>
    public Func<MethodSpec, KvStorage>? Storage { get; init; }
    /// <summary>The analytic accountant's footprint and peak KV (null: not modelled).</summary>
    public Func<MethodSpec, FootprintShape, FootprintResult>? Footprint { get; init; }
    /// <summary>A token scorer that fixes part of its schedule (Locret: chunked, its stabilizers as the always-kept window,
    /// its local tail): the schedule the options gave → the one it runs.</summary>
    public Func<MethodSpec, EvictionSchedule, EvictionSchedule>? OwnSchedule { get; init; }
    /// <summary>The point's label on its curve ("4-bit"); default: <c>key=value</c> of <see cref="CurveKnob"/>.</summary>
    public Func<MethodSpec, string>? Point { get; init; }

    /// <summary>Whether the engine can run it (not only the accountant).</summary>
    public bool Runs => Kind == MethodKind.ScoresTokens ? Scorer is not null : Create is not null;

    /// <summary>Every name it answers to.</summary>
    public IEnumerable<string> Names => [Name, .. Aliases];

    /// <summary>A configuration of this method with every knob at its default.</summary>
    public MethodSpec Spec() => new(this, KnobValues.Empty);

    public override string ToString() => Name;

    /// <summary>A token scorer's descriptor: the schedule options apply to it, and the accountant counts it as the
    /// engine runs its schedule (<see cref="KvFootprint.Scheduled"/>).</summary>
    public static MethodDescriptor TokenScorer(string name, string summary, IReadOnlyList<Knob> knobs, Func<MethodSpec, IKvScorer> scorer) => new()
    {
        Name = name,
        Kind = MethodKind.ScoresTokens,
        Summary = summary,
        Knobs = knobs,
        Scorer = scorer,
        Footprint = (s, shape) => KvFootprint.Scheduled(s.EffectiveSchedule.Plan(shape.PromptTokens, shape.Chunking), shape.GenTokens,
            s.EffectiveSchedule, s.Storage.Quantization),
    };
}
