namespace KvNotebooks.Training.Ops;

/// <summary>
/// Which keys a query head sees. Row i (0-based position) sees key j iff
/// <c>j ≤ i  and  (j &lt; Sink  or  j &gt; i − Window)</c>:
/// the first <see cref="Sink"/> tokens plus the last <see cref="Window"/> tokens up to and including
/// i itself (keys i−Window+1 … i). <see cref="Full"/> (Sink 0, Window int.MaxValue) is plain causal.
/// This is the StreamingLLM head of PAPER.md §2.2 at token (not 128-block) granularity.
/// </summary>
public readonly record struct HeadMask(int Sink, int Window)
{
    /// <summary>Full causal attention.</summary>
    public static HeadMask Full => new(0, int.MaxValue);

    /// <summary>A streaming head: <paramref name="sink"/> first tokens + a local window of <paramref name="window"/> (≥ 1).</summary>
    public static HeadMask Streaming(int sink, int window) =>
        window >= 1 && sink >= 0 ? new(sink, window) : throw new ArgumentOutOfRangeException(nameof(window), "need sink ≥ 0, window ≥ 1");

    public bool IsFull => Window == int.MaxValue;

    /// <summary>Whether row i sees key j (the definition above).</summary>
    public bool Sees(int i, int j) => j <= i && (j < Sink || j > i - Window);

    /// <summary>Row i's visible keys as two ranges [0, SinkEnd) ∪ [WindowStart, i].</summary>
    public (int SinkEnd, int WindowStart) Ranges(int i)
    {
        if (IsFull) return (0, 0);
        int sinkEnd = Math.Min(Sink, i + 1);
        int windowStart = Math.Max(sinkEnd, i - Window + 1);
        return (sinkEnd, windowStart);
    }
}
