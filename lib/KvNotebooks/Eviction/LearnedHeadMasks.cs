using KvNotebooks.Footprint;
using KvNotebooks.HeadMasks;

namespace KvNotebooks.Eviction;

/// <summary>
/// What DuoAttention and PruLong share at inference: a trained score per (layer, KV head) (<see cref="HeadScores"/>, a
/// TSV; a 0/1 mask loads too), binarized at a head sparsity s — the round(s·heads) lowest become streaming heads with
/// sink + window, ties broken by the method's own seeded rule — and run as a <see cref="HeadMask"/>.
/// The accountant counts a fraction s of streaming heads (the paper's formula), or exactly round(s·heads) of them
/// when the model's head count is known.
/// </summary>
public static class LearnedHeadMasks
{
    /// <summary>Head sparsity s: the fraction of (layer, KV head) pairs that become streaming heads.</summary>
    public static readonly Knob<double> SparsityKnob = new("head-sparsity", "sparsity", 0.5, "duo/prulong: fraction of streaming heads s",
        s => s >= 0 && s <= 1 ? null : "must be in [0, 1]");

    /// <summary>The seed of the tie-breaking among equal scores.</summary>
    public static readonly Knob<int> TieSeedKnob = new("tie-seed", "tie-seed", HeadScores.DefaultSeed, "duo/prulong: seed of the tie-breaking among equal scores");

    /// <summary>A learned-mask method named <paramref name="name"/>, breaking ties by <paramref name="rule"/>.</summary>
    public static MethodDescriptor Descriptor(string name, string summary, TieBreak rule) => new()
    {
        Name = name,
        Kind = MethodKind.MasksHeads,
        Summary = summary,
        Knobs = [HeadMask.MasksKnob, SparsityKnob, Streaming.SinkKnob, Streaming.WindowKnob, TieSeedKnob],
        CurveKnob = SparsityKnob,
        Create = (s, config) => new HeadMask(Binarized(s, rule, config), s.Get(Streaming.SinkKnob), s.Get(Streaming.WindowKnob)),
        Footprint = (s, shape) =>
        {
            // Whole heads when the head count is known (the mask file's, or the model's), else the paper's fraction.
            int? heads = s.Knobs.Has(HeadMask.MasksKnob) ? HeadScores.Load(s.Get(HeadMask.MasksKnob)).Count : shape.KvHeads;
            int sink = s.Get(Streaming.SinkKnob), window = s.Get(Streaming.WindowKnob);
            return heads is int h
                ? KvFootprint.HeadMix(shape.Plan, shape.GenTokens, HeadScores.StreamingCount(s.Get(SparsityKnob), h), h, sink, window, s.Storage.Quantization)
                : KvFootprint.Duo(shape.Plan, shape.GenTokens, s.Get(SparsityKnob), sink, window, s.Storage.Quantization);
        },
    };

    /// <summary>The full-head mask a configuration runs: its scores file binarized at its head sparsity.</summary>
    public static bool[,] Binarized(MethodSpec s, TieBreak rule, Model.LlamaConfig? config = null) =>
        HeadScores.Load(s.Get(HeadMask.MasksKnob), config).Binarize(s.Get(SparsityKnob), rule, s.Get(TieSeedKnob));
}

/// <summary>DuoAttention (Xiao et al. 2024): gates trained to reconstruct the full model's hidden states.</summary>
public static class DuoAttention
{
    public static MethodDescriptor Descriptor { get; } = LearnedHeadMasks.Descriptor("duo",
        "DuoAttention: heads whose trained gate is lowest become streaming (sink + window), the rest stay full", TieBreak.Duo) with { Aliases = ["duoattention"] };
}

/// <summary>PruLong (Bhaskar et al. 2025): hard-concrete masks trained with the next-token loss.</summary>
public static class PruLong
{
    public static MethodDescriptor Descriptor { get; } = LearnedHeadMasks.Descriptor("prulong",
        "PruLong: heads whose learned mask is lowest become streaming (sink + window), the rest stay full", TieBreak.PruLong);
}
