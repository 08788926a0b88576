namespace KvNotebooks.Cache;

/// <summary>A fixed-size block of KV entries for one head: keys and values [PageSize × HeadDim] fp32
/// and each entry's original position.</summary>
public sealed class KvPage
{
    public readonly float[] Keys;
    public readonly float[] Values;
    public readonly int[] Positions;

    internal KvPage(int pageSize, int headDim)
    {
        Keys = new float[pageSize * headDim];
        Values = new float[pageSize * headDim];
        Positions = new int[pageSize];
    }
}

/// <summary>
/// The memory of one <see cref="KvCache"/>: pages are rented by heads as they grow and returned when
/// eviction empties them. Returned pages are reused (fresh pages are slow on these machines), the way
/// a GPU caching allocator keeps freed blocks: <see cref="BytesInUse"/> is what the cache holds,
/// like <c>torch.cuda.memory_allocated</c>; <see cref="BytesReserved"/> is what the process keeps.
/// </summary>
public sealed class KvPagePool
{
    private readonly Stack<KvPage> _free = new();
    private readonly object _lock = new();

    public KvPagePool(int pageSize, int headDim)
    {
        if (pageSize <= 0) throw new ArgumentOutOfRangeException(nameof(pageSize), pageSize, "page size must be positive");
        if (headDim <= 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "head dim must be positive");
        PageSize = pageSize;
        HeadDim = headDim;
    }

    public int PageSize { get; }
    public int HeadDim { get; }
    public int PagesInUse { get; private set; }
    public int PeakPagesInUse { get; private set; }
    public int PagesReserved { get; private set; }

    /// <summary>Bytes of one page: keys and values in fp32 plus an int32 position per entry.</summary>
    public long BytesPerPage => (long)PageSize * (2L * HeadDim * sizeof(float) + sizeof(int));
    public long BytesInUse => PagesInUse * BytesPerPage;
    public long PeakBytesInUse => PeakPagesInUse * BytesPerPage;
    public long BytesReserved => PagesReserved * BytesPerPage;

    public KvPage Rent()
    {
        lock (_lock)
        {
            var page = _free.Count > 0 ? _free.Pop() : NewPage();
            PagesInUse++;
            if (PagesInUse > PeakPagesInUse) PeakPagesInUse = PagesInUse;
            return page;
        }
    }

    public void Return(KvPage page)
    {
        lock (_lock)
        {
            _free.Push(page);
            PagesInUse--;
        }
    }

    /// <summary>Starts a new peak measurement from what is in use now.</summary>
    public void ResetPeak()
    {
        lock (_lock) PeakPagesInUse = PagesInUse;
    }

    private KvPage NewPage()
    {
        PagesReserved++;
        return new KvPage(PageSize, HeadDim);
    }
}
