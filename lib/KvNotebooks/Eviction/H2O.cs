namespace KvNotebooks.Eviction;

/// <summary>
/// H2O, heavy-hitter oracle (Zhang et al. 2023): a KV's score is the attention it has accumulated from
/// every query so far (all pre-fill rows, and decode rows when evicting while decoding); the recent
/// window is always kept. Attention here is the model's own (normalised over everything a row sees),
/// averaged over the query heads of a GQA group. The accumulators are per-run state aligned with the
/// cache's entries (compacted on every eviction); they are the method's bookkeeping, not KV memory.
/// </summary>
public sealed class H2O : IKvScorer
{
    public static MethodDescriptor Descriptor { get; } = MethodDescriptor.TokenScorer("h2o",
        "H2O: keep the heavy hitters, the KVs with the most attention accumulated over every query so far",
        [], _ => new H2O());

    private float[][][]? _acc;     // [layer][head][entry]
    private int[][]? _tracked;     // entries of each head the accumulator covers
    [ThreadStatic] private static float[]? _step;

    public string Name => "h2o";
    public ScoreQueries Queries => ScoreQueries.AllRows;
    public IKvScorer ForSession() => new H2O();

    public void Observe(in ScoreInput input)
    {
        var acc = Accumulator(input.Layer, input.Head, input.End);
        int tracked = _tracked![input.Layer][input.Head];
        acc.AsSpan(tracked, input.End - tracked).Clear();
        var step = _step is { } s && s.Length >= input.End ? s : _step = new float[Math.Max(input.End, 256)];
        WindowAttention.Sum(input, step.AsSpan(0, input.End));
        System.Numerics.Tensors.TensorPrimitives.Add(acc.AsSpan(0, input.End), step.AsSpan(0, input.End), acc.AsSpan(0, input.End));
        _tracked[input.Layer][input.Head] = input.End;
    }

    public void Score(in ScoreInput input, Span<float> scores)
    {
        var acc = _acc?[input.Layer][input.Head] ?? throw new InvalidOperationException("H2O scores before it observed any query");
        acc.AsSpan(input.From + input.IndexOffset, input.To - input.From).CopyTo(scores);
    }

    public void OnKept(int layer, int head, ReadOnlySpan<int> kept)
    {
        var acc = _acc![layer][head];
        for (int j = 0; j < kept.Length; j++) acc[j] = acc[kept[j]];
        _tracked![layer][head] = kept.Length;
    }

    /// <summary>Accumulated attention of one head's entries (for tests and notebooks).</summary>
    public ReadOnlySpan<float> Accumulated(int layer, int head) => _acc![layer][head].AsSpan(0, _tracked![layer][head]);

    public void Begin(int numLayers, int numHeads)
    {
        _acc = new float[numLayers][][];
        _tracked = new int[numLayers][];
        for (int l = 0; l < numLayers; l++)
        {
            _acc[l] = new float[numHeads][];
            _tracked[l] = new int[numHeads];
            for (int h = 0; h < numHeads; h++) _acc[l][h] = new float[256];
        }
    }

    /// <summary>One head's accumulator, grown to hold <paramref name="count"/> entries (each head is only
    /// touched by one thread at a time).</summary>
    private float[] Accumulator(int layer, int head, int count)
    {
        var a = _acc?[layer][head] ?? throw new InvalidOperationException("H2O: Begin was not called");
        if (a.Length < count)
        {
            var grown = new float[Math.Max(count, a.Length * 2)];
            a.AsSpan(0, _tracked![layer][head]).CopyTo(grown);
            _acc[layer][head] = a = grown;
        }
        return a;
    }
}
