namespace KvNotebooks.Eviction;

/// <summary>
/// StreamingLLM heads: after every chunk and decode step, keep the first <see cref="Sink"/> and the last
/// <see cref="Window"/> entries. So a chunk sees the sinks and window that precede it plus itself
/// (causally), exactly PAPER.md §1.2's streaming head.
/// </summary>
public sealed class Streaming : IEvictionMethod
{
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

    public void Evict(EvictionContext ctx)
    {
        foreach (var head in ctx.Cache.Layer(ctx.Layer)) head.KeepSinkAndWindow(Sink, Window);
    }
}
