namespace KvNotebooks.Cache;

/// <summary>
/// The KV cache of a whole model: one <see cref="KvHeadCache"/> per (layer, KV head), so GQA models
/// store one copy per KV head. What it holds is exactly what a method keeps: evicted entries are
/// gone and their pages go back to the pool.
/// </summary>
public sealed class KvCache
{
    private readonly KvHeadCache[][] _heads;

    public KvCache(int numLayers, int numKvHeads, int headDim, int pageSize = 64)
    {
        if (numLayers <= 0 || numKvHeads <= 0)
            throw new ArgumentOutOfRangeException(nameof(numLayers), "a cache needs at least one layer and one KV head");
        Pool = new KvPagePool(pageSize, headDim);
        NumLayers = numLayers;
        NumKvHeads = numKvHeads;
        _heads = new KvHeadCache[numLayers][];
        for (int l = 0; l < numLayers; l++)
        {
            _heads[l] = new KvHeadCache[numKvHeads];
            for (int h = 0; h < numKvHeads; h++) _heads[l][h] = new KvHeadCache(Pool);
        }
    }

    public KvPagePool Pool { get; }
    public int NumLayers { get; }
    public int NumKvHeads { get; }
    public int HeadDim => Pool.HeadDim;

    public KvHeadCache this[int layer, int kvHead] => _heads[layer][kvHead];
    /// <summary>The KV heads of one layer, indexed by KV head.</summary>
    public KvHeadCache[] Layer(int layer) => _heads[layer];

    /// <summary>Entries held now, summed over every (layer, KV head).</summary>
    public long LiveEntries
    {
        get
        {
            long n = 0;
            foreach (var layer in _heads) foreach (var h in layer) n += h.Count;
            return n;
        }
    }

    /// <summary>Bytes of the entries held now (keys + values, fp32), excluding page slack.</summary>
    public long LiveBytes => LiveEntries * 2L * HeadDim * sizeof(float);
    /// <summary>Bytes of the pages held now (what an allocator would report).</summary>
    public long AllocatedBytes => Pool.BytesInUse;
    public long PeakAllocatedBytes => Pool.PeakBytesInUse;

    public void Clear()
    {
        foreach (var layer in _heads) foreach (var h in layer) h.Clear();
        Pool.ResetPeak();
    }
}
