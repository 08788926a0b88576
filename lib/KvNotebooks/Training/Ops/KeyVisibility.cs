namespace KvNotebooks.Training.Ops;

/// <summary>
/// Which keys a query head sees in training attention (the StreamingLLM head of DuoAttention and
/// PruLong, or plain causal attention). Positions are cut into blocks of <see cref="Block"/> tokens;
/// with SinkBlocks = ⌈Sink / Block⌉ and LocalBlocks = ⌈Window / Block⌉, row i sees key j iff
/// <c>j ≤ i  and  (⌊j/Block⌋ &lt; SinkBlocks  or  ⌊j/Block⌋ &gt; ⌊i/Block⌋ − LocalBlocks)</c>:
/// the sink blocks, plus row i's own block (keys up to i) and the LocalBlocks − 1 blocks before it.
/// This is the block-sparse streaming kernel PruLong and DuoAttention train with (blocks of 128 tokens
/// there). <see cref="Block"/> = 1 is token granularity: the first Sink keys plus keys i − Window + 1 … i,
/// what a streaming head keeps at inference. <see cref="Full"/> is plain causal attention.
/// Every kernel reads the rule through <see cref="SinkEnd"/>, <see cref="WindowStart"/> and
/// <see cref="WindowEnd"/>, so the block and token rules share one code path.
/// </summary>
public readonly record struct KeyVisibility(int Sink, int Window, int Block = 1)
{
    /// <summary>Full causal attention.</summary>
    public static KeyVisibility Full => new(0, int.MaxValue);

    /// <summary>A streaming head: <paramref name="sink"/> first tokens + a local window of <paramref name="window"/> (≥ 1),
    /// both rounded up to whole blocks of <paramref name="block"/> tokens (1: token granularity).</summary>
    public static KeyVisibility Streaming(int sink, int window, int block = 1) =>
        window >= 1 && sink >= 0 && block >= 1 ? new(sink, window, block)
        : throw new ArgumentOutOfRangeException(nameof(window), $"need sink ≥ 0, window ≥ 1, block ≥ 1 (got {sink}, {window}, {block})");

    public bool IsFull => Window == int.MaxValue;

    /// <summary>The block size in tokens (1 for a default-constructed value).</summary>
    public int BlockSize => Block < 1 ? 1 : Block;

    /// <summary>⌈Sink / Block⌉.</summary>
    public int SinkBlocks => (Sink + BlockSize - 1) / BlockSize;

    /// <summary>⌈Window / Block⌉ (the block holding the row counts as one).</summary>
    public int LocalBlocks => IsFull ? int.MaxValue : (int)(((long)Window + BlockSize - 1) / BlockSize);

    /// <summary>Keys before this are sinks: SinkBlocks · Block (0 for a full head, which needs none).</summary>
    public int SinkEnd => IsFull ? 0 : SinkBlocks * BlockSize;

    /// <summary>The first key of row i's local window (may be ≤ 0): (⌊i/Block⌋ − LocalBlocks + 1) · Block;
    /// i − Window + 1 at token granularity. Row i sees the non-sink keys j with WindowStart(i) ≤ j ≤ i.</summary>
    public long WindowStart(int i) => IsFull ? long.MinValue : ((long)(i / BlockSize) - LocalBlocks + 1) * BlockSize;

    /// <summary>The first row whose window no longer holds key j: (⌊j/Block⌋ + LocalBlocks) · Block; j + Window at
    /// token granularity. A non-sink key j is seen by rows j … WindowEnd(j) − 1.</summary>
    public long WindowEnd(int j) => IsFull ? long.MaxValue : ((long)(j / BlockSize) + LocalBlocks) * BlockSize;

    /// <summary>Whether row i sees key j (the definition above).</summary>
    public bool Sees(int i, int j) => j <= i && (IsFull || j < SinkEnd || j >= WindowStart(i));

    /// <summary>Row i's visible keys as two ranges [0, SinkEnd) ∪ [WindowStart, i].</summary>
    public (int SinkEnd, int WindowStart) Ranges(int i)
    {
        if (IsFull) return (0, 0);
        int sinkEnd = Math.Min(SinkEnd, i + 1);
        int windowStart = (int)Math.Max(sinkEnd, WindowStart(i));
        return (sinkEnd, windowStart);
    }

    public override string ToString() => IsFull ? "full" : BlockSize == 1 ? $"streaming(sink {Sink}, window {Window})"
        : $"streaming(sink {Sink}, window {Window}, blocks of {BlockSize}: {SinkBlocks} sink + {LocalBlocks} local)";
}
