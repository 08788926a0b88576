namespace KvNotebooks.Cache;

/// <summary>
/// The entries one (layer, KV head) keeps: key, value and original position, in arrival order,
/// stored in pages from the cache's pool. Entry i lives in page i / PageSize at slot i % PageSize.
/// Eviction (<see cref="Keep"/>) compacts the survivors to the front and returns emptied pages.
/// </summary>
public sealed class KvHeadCache
{
    private readonly KvPagePool _pool;
    private readonly List<KvPage> _pages = new();

    internal KvHeadCache(KvPagePool pool) => _pool = pool;

    public int Count { get; private set; }
    public int HeadDim => _pool.HeadDim;
    public int PageSize => _pool.PageSize;
    public int PageCount => _pages.Count;
    public KvPage Page(int p) => _pages[p];

    public ReadOnlySpan<float> Key(int i) => _pages[i / PageSize].Keys.AsSpan(i % PageSize * HeadDim, HeadDim);
    public ReadOnlySpan<float> Value(int i) => _pages[i / PageSize].Values.AsSpan(i % PageSize * HeadDim, HeadDim);
    public int Position(int i) => _pages[i / PageSize].Positions[i % PageSize];

    /// <summary>Appends one entry per position. Entry r's key is
    /// <c>keys[offset + r·stride .. + HeadDim]</c>, likewise its value; its position is positions[r].</summary>
    public void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int offset, int stride, ReadOnlySpan<int> positions)
    {
        int hd = HeadDim, ps = PageSize;
        for (int r = 0; r < positions.Length; r++)
        {
            int slot = Count % ps;
            if (slot == 0 && Count / ps == _pages.Count) _pages.Add(_pool.Rent());
            var page = _pages[Count / ps];
            keys.Slice(offset + r * stride, hd).CopyTo(page.Keys.AsSpan(slot * hd, hd));
            values.Slice(offset + r * stride, hd).CopyTo(page.Values.AsSpan(slot * hd, hd));
            page.Positions[slot] = positions[r];
            Count++;
        }
        _pool.TrackEntries(positions.Length);
    }

    /// <summary>Appends one entry per position, whose key and value the caller writes afterwards in place
    /// (<see cref="KeySlot"/>, <see cref="ValueSlot"/>): the forward pass writes rotated keys straight into
    /// the pages, several row tiles at once. Until written, the new entries hold whatever the pages held.</summary>
    internal void AppendPending(ReadOnlySpan<int> positions)
    {
        int ps = PageSize;
        for (int r = 0; r < positions.Length; r++)
        {
            int slot = Count % ps;
            if (slot == 0 && Count / ps == _pages.Count) _pages.Add(_pool.Rent());
            _pages[Count / ps].Positions[slot] = positions[r];
            Count++;
        }
        _pool.TrackEntries(positions.Length);
    }

    /// <summary>Where entry i's key lives (writable: see <see cref="AppendPending"/>).</summary>
    internal Span<float> KeySlot(int i) => _pages[i / PageSize].Keys.AsSpan(i % PageSize * HeadDim, HeadDim);
    /// <summary>Where entry i's value lives.</summary>
    internal Span<float> ValueSlot(int i) => _pages[i / PageSize].Values.AsSpan(i % PageSize * HeadDim, HeadDim);

    /// <summary>Keeps exactly the entries at <paramref name="indices"/> (strictly increasing, each
    /// in [0, Count)), in that order; frees every page no longer needed.</summary>
    public void Keep(ReadOnlySpan<int> indices)
    {
        int hd = HeadDim, ps = PageSize;
        for (int j = 0; j < indices.Length; j++)
        {
            int i = indices[j];
            if ((uint)i >= (uint)Count || (j > 0 && i <= indices[j - 1]))
                throw new ArgumentException(
                    $"Keep: indices must be strictly increasing and within [0, {Count}); index {j} is {i}", nameof(indices));
            if (i == j) continue;
            KvPage src = _pages[i / ps], dst = _pages[j / ps];
            int si = i % ps, di = j % ps;
            src.Keys.AsSpan(si * hd, hd).CopyTo(dst.Keys.AsSpan(di * hd, hd));
            src.Values.AsSpan(si * hd, hd).CopyTo(dst.Values.AsSpan(di * hd, hd));
            dst.Positions[di] = src.Positions[si];
        }
        Truncate(indices.Length);
    }

    /// <summary>Keeps the first <paramref name="sink"/> and the last <paramref name="window"/> entries
    /// (StreamingLLM); everything in between is evicted.</summary>
    public void KeepSinkAndWindow(int sink, int window)
    {
        if (sink < 0 || window < 0) throw new ArgumentOutOfRangeException(nameof(sink), "sink and window must be ≥ 0");
        if (sink + window >= Count) return;
        Span<int> keep = sink + window <= 4096 ? stackalloc int[sink + window] : new int[sink + window];
        for (int j = 0; j < sink; j++) keep[j] = j;
        for (int j = 0; j < window; j++) keep[sink + j] = Count - window + j;
        Keep(keep);
    }

    /// <summary>Evicts the newest <paramref name="k"/> entries (patched chunked eviction drops the
    /// appended prompt tail this way).</summary>
    public void DropLast(int k)
    {
        if (k < 0 || k > Count) throw new ArgumentOutOfRangeException(nameof(k), k, $"cannot drop {k} of {Count} entries");
        Truncate(Count - k);
    }

    /// <summary>Evicts everything.</summary>
    public void Clear() => Truncate(0);

    private void Truncate(int count)
    {
        _pool.TrackEntries(count - Count);
        Count = count;
        int needed = (count + PageSize - 1) / PageSize;
        for (int p = _pages.Count - 1; p >= needed; p--)
        {
            _pool.Return(_pages[p]);
            _pages.RemoveAt(p);
        }
    }
}
