using KvNotebooks.Footprint;

namespace KvNotebooks.Eviction;

/// <summary>
/// StreamingLLM heads: after every chunk and decode step, keep the first <see cref="Sink"/> and the last
/// <see cref="Window"/> entries. So a chunk sees the sinks and window that precede it plus itself
/// (causally), exactly the streaming head of the paper's accounting (docs/footprint.md).
/// </summary>
public sealed class Streaming : IEvictionMethod
{
    /// <summary>Sink tokens S a streaming head keeps (shared by every head-masking method).</summary>
    public static readonly Knob<int> SinkKnob = new("sink", "sink", 128, "Streaming heads: sink tokens S kept from the start",
        s => s >= 0 ? null : "must be ≥ 0");
    /// <summary>Local window W a streaming head keeps (shared by every head-masking method).</summary>
    public static readonly Knob<int> WindowKnob = new("window", "window", 1024, "Streaming heads: local window W of the latest tokens",
        w => w >= 0 ? null : "must be ≥ 0");

    public static MethodDescriptor Descriptor { get; } = new()
    {
        Name = "streaming",
        Kind = MethodKind.MasksHeads,
        Summary = "StreamingLLM: every head keeps its first S (sink) and last W (window) entries",
        Knobs = [SinkKnob, WindowKnob],
        CurveKnob = WindowKnob,
        Create = (s, _) => new Streaming(s.Get(SinkKnob), s.Get(WindowKnob)),
        Footprint = (s, shape) => KvFootprint.Duo(shape.Plan, shape.GenTokens, 1.0, s.Get(SinkKnob), s.Get(WindowKnob), s.Storage.Quantization),
    };

    public Streaming(int sink = 128, int window = 1024)
    {
        if (sink < 0) throw new ArgumentOutOfRangeException(nameof(sink), sink, "sink must be ≥ 0");
        if (window < 0) throw new ArgumentOutOfRangeException(nameof(window), window, "window must be ≥ 0");
        Sink = sink;
        Window = window;
    }

    public int Sink { get; }
    public int Window { get; }
    public string Name => "streaming";

    public void Evict(in LayerStep step)
    {
        for (int h = 0; h < step.Cache.NumKvHeads; h++) step.Cache.KeepSinkAndWindow(step.Layer, h, Sink, Window);
    }
}
