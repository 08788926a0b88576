using KvNotebooks.Cache;
using KvNotebooks.Footprint;

namespace KvNotebooks.Eviction;

/// <summary>
/// KV quantization in the KIVI layout (Liu et al. 2024; FlexGen-style group-wise min/max codes) as a method of its
/// own: full attention (nothing evicted) over quantized storage. Every KV older than the full-precision recent
/// window is stored as <see cref="KvQuantization.Bits"/>-bit codes — keys per channel over groups of tokens, values
/// per token over groups of channels — with fp16 scales and zero-points (<see cref="QuantizedKvStore"/>). Attention
/// reads dequantized values. The footprint counts bits (a b-bit entry counts b/16 of an fp16 one) and the measured
/// bytes are the codes, scales, zero-points and positions really held. Any other method runs over the same storage
/// with <c>--kv-bits</c> (<see cref="KvStorage"/>).
/// </summary>
public sealed class QuantizedKv : IEvictionMethod
{
    public static readonly Knob<int> BitsKnob = new("bits", "bits", 4, "quantized: bits per code, 2 | 4 | 8", b => b is 2 or 4 or 8 ? null : "must be 2, 4 or 8");
    public static readonly Knob<int> GroupKnob = new("group-size", "group", 32, "quantized: tokens per key group, channels per value group", g => g >= 1 ? null : "must be ≥ 1");
    public static readonly Knob<int> ResidualKnob = new("residual", "residual", 128, "quantized: newest tokens kept in full precision", r => r >= 0 ? null : "must be ≥ 0");

    public static MethodDescriptor Descriptor { get; } = new()
    {
        Name = "quantized",
        Aliases = ["kivi"],
        Kind = MethodKind.ChangesStorage,
        Summary = "KIVI-style KV quantization: nothing evicted, KVs older than a recent window stored as b-bit codes",
        Knobs = [BitsKnob, GroupKnob, ResidualKnob],
        CurveKnob = BitsKnob,
        Point = s => $"{s.Get(BitsKnob)}-bit",
        Storage = s => new KvStorage(Quantization: Quantization(s)),
        Create = (s, config) =>
        {
            Quantization(s).Validate(config.HeadDim);
            return new QuantizedKv();
        },
        Footprint = (s, shape) => KvFootprint.Quantized(shape.Plan, shape.GenTokens, Quantization(s)),
    };

    private static KvQuantization Quantization(MethodSpec s) => new(s.Get(BitsKnob), s.Get(GroupKnob), s.Get(ResidualKnob));

    public string Name => "quantized";

    /// <summary>Nothing to evict: the storage quantizes (<see cref="KvCache.EndLayerStep"/>).</summary>
    public void Evict(in LayerStep step) { }
}
