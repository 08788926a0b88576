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

    public void Clear()
    {
        foreach (var layer in _heads) foreach (var h in layer) h.Clear();
        Quantized?.Clear();
        Pool.ResetPeak();
    }

    /// <summary>Empties the cache and hands its pages to its recycler, where the next cache of the same
    /// shape finds them; appending afterwards throws.</summary>
    public void Dispose()
    {
        foreach (var layer in _heads) foreach (var h in layer) h.Clear();
        Quantized?.Dispose();
        Pool.Dispose();
    }
}
