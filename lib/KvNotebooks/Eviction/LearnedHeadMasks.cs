using KvNotebooks.Footprint;

namespace KvNotebooks.Eviction;

/// <summary>
/// What DuoAttention and PruLong share at inference: a trained score per (layer, KV head), binarized at a head
/// sparsity s (the round(s·heads) lowest become streaming heads with sink + window), run as a <see cref="HeadMask"/>.
/// The accountant counts a fraction s of streaming heads (the paper's formula), or exactly round(s·heads) of them
/// when the model's head count is known.
/// </summary>
public static class LearnedHeadMasks
{
    /// <summary>Head sparsity s: the fraction of (layer, KV head) pairs that become streaming heads.</summary>
    public static readonly Knob<double> SparsityKnob = new("head-sparsity", "sparsity", 0.5, "duo/prulong: fraction of streaming heads s",
        s => s >= 0 && s <= 1 ? null : "must be in [0, 1]");

    /// <summary>A learned-mask method named <paramref name="name"/>.</summary>
    public static MethodDescriptor Descriptor(string name, string summary) => new()
    {
        Name = name,
        Kind = MethodKind.MasksHeads,
        Summary = summary,
        Knobs = [HeadMask.MasksKnob, SparsityKnob, Streaming.SinkKnob, Streaming.WindowKnob],
        CurveKnob = SparsityKnob,
        Create = (s, config) =>
        {
            var mask = HeadMask.LoadTsv(s.Get(HeadMask.MasksKnob), config);
            var method = new HeadMask(mask, s.Get(Streaming.SinkKnob), s.Get(Streaming.WindowKnob));
            int want = (int)Math.Round(s.Get(SparsityKnob) * mask.Length, MidpointRounding.AwayFromZero);
            if (s.Knobs.Has(SparsityKnob) && want != method.StreamingHeads)
                throw new ArgumentException($"--head-sparsity {s.Get(SparsityKnob)} asks for {want} streaming heads, the 0/1 mask {Path.GetFileName(s.Get(HeadMask.MasksKnob))} has {method.StreamingHeads}");
            return method;
        },
        Footprint = (s, shape) => shape.KvHeads is int heads
            ? KvFootprint.HeadMix(shape.Plan, shape.GenTokens, (int)Math.Round(s.Get(SparsityKnob) * heads, MidpointRounding.AwayFromZero), heads,
                s.Get(Streaming.SinkKnob), s.Get(Streaming.WindowKnob), s.Storage.Quantization)
            : KvFootprint.Duo(shape.Plan, shape.GenTokens, s.Get(SparsityKnob), s.Get(Streaming.SinkKnob), s.Get(Streaming.WindowKnob), s.Storage.Quantization),
    };
}

/// <summary>DuoAttention (Xiao et al. 2024): gates trained to reconstruct the full model's hidden states.</summary>
public static class DuoAttention
{
    public static MethodDescriptor Descriptor { get; } = LearnedHeadMasks.Descriptor("duo",
        "DuoAttention: heads whose trained gate is lowest become streaming (sink + window), the rest stay full") with { Aliases = ["duoattention"] };
}

/// <summary>PruLong (Bhaskar et al. 2025): hard-concrete masks trained with the next-token loss.</summary>
public static class PruLong
{
    public static MethodDescriptor Descriptor { get; } = LearnedHeadMasks.Descriptor("prulong",
        "PruLong: heads whose learned mask is lowest become streaming (sink + window), the rest stay full");
}
