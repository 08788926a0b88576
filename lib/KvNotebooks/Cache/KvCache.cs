namespace KvNotebooks.Cache;

/// <summary>
/// The KV cache of a whole model: one <see cref="KvHeadCache"/> per (layer, stored head). Normally the
/// stored heads are the model's KV heads, so GQA models store one copy per KV head; a cache built with
/// as many heads as query heads is the replicated layout (<see cref="KvStorage.ReplicatePerQueryHead"/>).
/// What it holds is exactly what a method keeps: evicted entries are gone and their pages go back to
/// the pool. With <see cref="Quantized"/>, the head caches hold the full-precision recent window and
/// older entries live as low-bit codes in the quantized store.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly KvHeadCache[][] _heads;
    private KvHeadCache[] _views = [];   // per stored head: dequantized views for scoring (quantized storage only)

    /// <param name="recycler">Pages of earlier caches to reuse, and where this one's go when it is disposed (null: none).</param>
    public KvCache(int numLayers, int numKvHeads, int headDim, int pageSize = 64, KvQuantization? quantization = null, KvPageRecycler? recycler = null)
    {
        if (numLayers <= 0 || numKvHeads <= 0)
            throw new ArgumentOutOfRangeException(nameof(numLayers), "a cache needs at least one layer and one KV head");
        Pool = new KvPagePool(pageSize, headDim, recycler);
        NumLayers = numLayers;
        NumKvHeads = numKvHeads;
        _heads = new KvHeadCache[numLayers][];
        for (int l = 0; l < numLayers; l++)
        {
            _heads[l] = new KvHeadCache[numKvHeads];
            for (int h = 0; h < numKvHeads; h++) _heads[l][h] = new KvHeadCache(Pool);
        }
        if (quantization is not null) Quantized = new QuantizedKvStore(quantization, numLayers, numKvHeads, headDim, Pool, recycler);
    }

    public KvPagePool Pool { get; }
    public int NumLayers { get; }
    /// <summary>Stored heads per layer: the model's KV heads, or its query heads when replicated.</summary>
    public int NumKvHeads { get; }
    public int HeadDim => Pool.HeadDim;
    /// <summary>The quantized part, or null for a full-precision cache.</summary>
    public QuantizedKvStore? Quantized { get; }

    /// <summary>The full-precision entries of one head (with quantization: its recent window).</summary>
    public KvHeadCache this[int layer, int kvHead] => _heads[layer][kvHead];
    /// <summary>The heads of one layer, indexed by stored head.</summary>
    public KvHeadCache[] Layer(int layer) => _heads[layer];

    /// <summary>Entries one head holds, quantized ones included.</summary>
    public int HeadEntries(int layer, int head) => _heads[layer][head].Count + (Quantized?.Count(layer, head) ?? 0);
    /// <summary>Quantized entries of one head (0 without quantization).</summary>
    public int QuantizedEntries(int layer, int head) => Quantized?.Count(layer, head) ?? 0;
    /// <summary>Bits one stored entry costs in the footprint's unit: 16 (the paper's fp16/bf16 baseline)
    /// for a full-precision entry; a quantized entry costs <see cref="KvQuantization.Bits"/>.</summary>
    public int QuantizedBits => Quantized?.Quantization.Bits ?? 16;

    /// <summary>Entries held now, summed over every (layer, head), quantized ones included.</summary>
    public long LiveEntries
    {
        get
        {
            long n = 0;
            for (int l = 0; l < NumLayers; l++)
                for (int h = 0; h < NumKvHeads; h++) n += HeadEntries(l, h);
            return n;
        }
    }

    /// <summary>Bytes of the entries held now, excluding page slack: full-precision keys + values in
    /// fp32, plus every quantized block (codes, scales, zero-points, positions).</summary>
    public long LiveBytes
    {
        get
        {
            long fp = 0;
            foreach (var layer in _heads) foreach (var h in layer) fp += h.Count;
            return fp * 2L * HeadDim * sizeof(float) + (Quantized?.Bytes ?? 0);
        }
    }

    /// <summary>Bytes the cache holds now (pages + quantized blocks: what an allocator would report).</summary>
    public long AllocatedBytes => Pool.BytesInUse;
    /// <summary>The most bytes the cache held at the same moment.</summary>
    public long PeakAllocatedBytes => Pool.PeakBytesInUse;
    /// <summary>The most entries the cache held at the same moment, over all layers and heads.</summary>
    public long PeakHeldEntries => Pool.PeakEntriesInUse;
    /// <summary>Peak bytes of dequantized views built for attention (0 without quantization).</summary>
    public long TransientPeakBytes => Quantized?.ScratchPool.PeakBytesInUse ?? 0;

    /// <summary>Entries head (<paramref name="layer"/>, <paramref name="head"/>) holds, quantized ones included
    /// (the same as <see cref="HeadEntries"/>): the index space of <see cref="Keep"/> and <see cref="View"/>.</summary>
    public int Count(int layer, int head) => HeadEntries(layer, head);

    /// <summary>
    /// Keeps exactly the entries at <paramref name="indices"/> of one head (strictly increasing, over all its entries,
    /// quantized ones first), whatever the storage: eviction decides what to keep, the storage how it is held.
    /// </summary>
    public void Keep(int layer, int head, ReadOnlySpan<int> indices)
    {
        int q = QuantizedEntries(layer, head);
        if (q == 0)
        {
            _heads[layer][head].Keep(indices);
            return;
        }
        int split = 0;
        while (split < indices.Length && indices[split] < q) split++;
        Quantized!.Keep(layer, head, indices[..split]);
        Span<int> rest = indices.Length - split <= 1024 ? stackalloc int[indices.Length - split] : new int[indices.Length - split];
        for (int i = 0; i < rest.Length; i++) rest[i] = indices[split + i] - q;
        _heads[layer][head].Keep(rest);
    }

    /// <summary>Keeps the first <paramref name="sink"/> and the last <paramref name="window"/> entries of one head
    /// (a streaming head), whatever the storage.</summary>
    public void KeepSinkAndWindow(int layer, int head, int sink, int window)
    {
        if (sink < 0 || window < 0) throw new ArgumentOutOfRangeException(nameof(sink), "sink and window must be ≥ 0");
        if (QuantizedEntries(layer, head) == 0)
        {
            _heads[layer][head].KeepSinkAndWindow(sink, window);
            return;
        }
        int count = Count(layer, head);
        if (sink + window >= count) return;
        var keep = new int[sink + window];
        for (int j = 0; j < sink; j++) keep[j] = j;
        for (int j = 0; j < window; j++) keep[sink + j] = count - window + j;
        Keep(layer, head, keep);
    }

    /// <summary>
    /// One head's entries from index <paramref name="from"/> on, readable in full precision: the head itself when they
    /// are all full precision (<paramref name="offset"/> = the quantized entries before them, to subtract from
    /// indices), else a transient dequantized copy of the whole head (offset 0). Scorers read keys here.
    /// </summary>
    public KvHeadCache View(int layer, int head, int from, out int offset)
    {
        int q = QuantizedEntries(layer, head);
        if (from >= q)
        {
            offset = q;
            return _heads[layer][head];
        }
        offset = 0;
        if (_views.Length == 0) _views = Enumerable.Range(0, NumKvHeads).Select(_ => Quantized!.NewViewHead()).ToArray();
        return Quantized!.FillView(layer, head, _heads[layer][head], _views[head]);
    }

    /// <summary>
    /// Attention of <paramref name="rows"/> new query rows (post-RoPE, [rows × numHeads·headDim]) over what layer
    /// <paramref name="layer"/> keeps, each row seeing the entries up to its own position, into <paramref name="output"/>:
    /// the one entry point for attention, whatever the storage (quantized heads are read dequantized).
    /// </summary>
    public void Attend(int layer, float[] q, int rows, int numHeads, float scale, float[] output)
    {
        if (Quantized is { } quantized) quantized.Attend(layer, _heads[layer], q, rows, numHeads, scale, output);
        else Attention.Layer(q, rows, numHeads, _heads[layer], scale, output);
    }

    /// <summary>After a layer's eviction at a step: the storage settles (a quantized cache turns whole groups of
    /// entries older than its full-precision window into codes).</summary>
    public void EndLayerStep(int layer) => Quantized?.Flush(layer, _heads[layer]);

    public void Clear()
    {
        foreach (var layer in _heads) foreach (var h in layer) h.Clear();
        foreach (var v in _views) v.Clear();
        Quantized?.Clear();
        Pool.ResetPeak();
    }

    /// <summary>Empties the cache and hands its pages to its recycler, where the next cache of the same
    /// shape finds them; appending afterwards throws.</summary>
    public void Dispose()
    {
        foreach (var layer in _heads) foreach (var h in layer) h.Clear();
        foreach (var v in _views) v.Clear();
        Quantized?.Dispose();
        Pool.Dispose();
    }
}
