using KvNotebooks.Footprint;

namespace KvNotebooks.Eviction;

/// <summary>Full attention: nothing is ever evicted (the baseline, footprint 100% with a single pre-fill).</summary>
public sealed class FullAttention : IEvictionMethod
{
    public static MethodDescriptor Descriptor { get; } = new()
    {
        Name = "full",
        Kind = MethodKind.Baseline,
        Summary = "Full attention: every KV is kept (the baseline)",
        Create = (_, _) => new FullAttention(),
        Footprint = (s, shape) => KvFootprint.Full(shape.Plan, shape.GenTokens, s.Storage.Quantization),
    };

    public string Name => "full";
    public void Evict(in LayerStep step) { }
}
