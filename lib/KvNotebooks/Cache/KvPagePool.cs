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
        // Pinned (the pinned-object heap): a cache's pages live long, so the GC should not copy them from
        // generation to generation. Not zeroed: what a page holds past its head's count is never read.
        Keys = GC.AllocateUninitializedArray<float>(pageSize * headDim, pinned: true);
        Values = GC.AllocateUninitializedArray<float>(pageSize * headDim, pinned: true);
        Positions = new int[pageSize];
    }
}

/// <summary>
/// The memory of one <see cref="KvCache"/>: pages are rented by heads as they grow and returned when
/// eviction empties them. Returned pages are reused (fresh pages are slow on these machines), the way
/// a GPU caching allocator keeps freed blocks: <see cref="BytesInUse"/> is what the cache holds,
/// like <c>torch.cuda.memory_allocated</c>; <see cref="BytesReserved"/> is what the process keeps.
/// Storage that is not a page (the codes and scales of a quantized cache) is registered with
/// <see cref="TrackExternal"/>, so the peak is the peak of everything the cache holds at once.
/// The pool also counts the entries stored (<see cref="EntriesInUse"/>) and their simultaneous peak.
/// A disposed pool hands its pages to its <see cref="KvPageRecycler"/> (when it has one), where the next cache
/// of the same page shape finds them: an evaluation that runs one session per example touches fresh memory once.
/// </summary>
public sealed class KvPagePool : IDisposable
{
    private readonly Stack<KvPage> _free = new();
    private readonly object _lock = new();
    private readonly KvPageRecycler? _recycler;
    private long _peakBytes, _stepPeakBytes;
    private bool _disposed;

    /// <param name="recycler">Where fresh pages come from first and where the pages go when the pool is disposed
    /// (null: always fresh pages, left to the garbage collector afterwards).</param>
    public KvPagePool(int pageSize, int headDim, KvPageRecycler? recycler = null)
    {
        if (pageSize <= 0) throw new ArgumentOutOfRangeException(nameof(pageSize), pageSize, "page size must be positive");
        if (headDim <= 0) throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "head dim must be positive");
        PageSize = pageSize;
        HeadDim = headDim;
        _recycler = recycler;
    }

    public int PageSize { get; }
    public int HeadDim { get; }
    public int PagesInUse { get; private set; }
    public int PeakPagesInUse { get; private set; }
    public int PagesReserved { get; private set; }
    /// <summary>Bytes held outside pages (quantized codes, scales, zero-points, positions).</summary>
    public long ExternalBytes { get; private set; }
    /// <summary>KV entries stored now, over every head of the cache (quantized ones included).</summary>
    public long EntriesInUse { get; private set; }
    /// <summary>The most entries stored at the same moment since the last <see cref="ResetPeak"/>.</summary>
    public long PeakEntriesInUse { get; private set; }

    /// <summary>Bytes of one page: keys and values in fp32 plus an int32 position per entry.</summary>
    public long BytesPerPage => (long)PageSize * (2L * HeadDim * sizeof(float) + sizeof(int));
    public long BytesInUse => PagesInUse * BytesPerPage + ExternalBytes;
    /// <summary>The most bytes held at the same moment since the last <see cref="ResetPeak"/>.</summary>
    public long PeakBytesInUse => _peakBytes;
    /// <summary>The most bytes held at the same moment since the last <see cref="ResetStepPeak"/>.</summary>
    public long StepPeakBytes => _stepPeakBytes;
    public long BytesReserved => PagesReserved * BytesPerPage;

    public KvPage Rent()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var page = _free.Count > 0 ? _free.Pop() : NewPage();
            PagesInUse++;
            if (PagesInUse > PeakPagesInUse) PeakPagesInUse = PagesInUse;
            UpdatePeaks();
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

    /// <summary>Registers <paramref name="delta"/> bytes of non-page storage (negative when freed).</summary>
    public void TrackExternal(long delta)
    {
        lock (_lock)
        {
            ExternalBytes += delta;
            if (ExternalBytes < 0) throw new InvalidOperationException($"external bytes went negative ({ExternalBytes})");
            UpdatePeaks();
        }
    }

    /// <summary>Registers <paramref name="delta"/> entries stored (negative when evicted).</summary>
    public void TrackEntries(long delta)
    {
        lock (_lock)
        {
            EntriesInUse += delta;
            if (EntriesInUse > PeakEntriesInUse) PeakEntriesInUse = EntriesInUse;
        }
    }

    /// <summary>Starts a new peak measurement from what is in use now.</summary>
    public void ResetPeak()
    {
        lock (_lock)
        {
            PeakPagesInUse = PagesInUse;
            _peakBytes = BytesInUse;
            PeakEntriesInUse = EntriesInUse;
            _stepPeakBytes = BytesInUse;
        }
    }

    /// <summary>Starts a new per-step peak (<see cref="StepPeakBytes"/>) without touching the run's peak.</summary>
    public void ResetStepPeak()
    {
        lock (_lock) _stepPeakBytes = BytesInUse;
    }

    private void UpdatePeaks()
    {
        long b = BytesInUse;
        if (b > _peakBytes) _peakBytes = b;
        if (b > _stepPeakBytes) _stepPeakBytes = b;
    }

    private KvPage NewPage()
    {
        PagesReserved++;
        return _recycler?.TryTake(PageSize, HeadDim) ?? new KvPage(PageSize, HeadDim);
    }

    /// <summary>Gives the free pages to the recycler. The pages still rented must have
    /// been returned first (<see cref="KvCache.Dispose"/> does both); the pool cannot be used afterwards.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            if (PagesInUse != 0) throw new InvalidOperationException($"{PagesInUse} pages are still in use; return them before disposing the pool");
            _disposed = true;
            while (_free.Count > 0)
            {
                var page = _free.Pop();
                _recycler?.Give(page);
            }
        }
    }
}

/// <summary>
/// Pages of finished caches, kept for the next cache of the same page shape (page size × head dim), the way
/// an <see cref="System.Buffers.ArrayPool{T}"/> keeps arrays: fresh pages cost page faults on these machines,
/// recycled ones do not. Owned by whoever runs the work (a <c>ComputeContext</c> has one, shared by the caches
/// of its model), never process-wide. At most <see cref="CapacityBytes"/> are kept; the rest go to the garbage
/// collector. Thread-safe.
/// </summary>
public sealed class KvPageRecycler(long capacityBytes = 1L << 30)
{
    private readonly Dictionary<(int PageSize, int HeadDim), Stack<KvPage>> _free = new();
    private readonly object _lock = new();
    private long _bytes;

    /// <summary>The most bytes of pages kept.</summary>
    public long CapacityBytes { get; } = capacityBytes >= 0 ? capacityBytes
        : throw new ArgumentOutOfRangeException(nameof(capacityBytes), capacityBytes, "the page cache's capacity must be ≥ 0 bytes");
    /// <summary>Bytes of pages kept now.</summary>
    public long Bytes { get { lock (_lock) return _bytes; } }

    internal static long PageBytes(KvPage p) => (long)(p.Keys.Length + p.Values.Length) * sizeof(float) + (long)p.Positions.Length * sizeof(int);

    internal KvPage? TryTake(int pageSize, int headDim)
    {
        lock (_lock)
        {
            if (!_free.TryGetValue((pageSize, headDim), out var stack) || stack.Count == 0) return null;
            var page = stack.Pop();
            _bytes -= PageBytes(page);
            return page;
        }
    }

    internal void Give(KvPage page)
    {
        lock (_lock)
        {
            long b = PageBytes(page);
            if (_bytes + b > CapacityBytes) return;
            var key = (page.Positions.Length, page.Keys.Length / page.Positions.Length);
            if (!_free.TryGetValue(key, out var stack)) _free[key] = stack = new Stack<KvPage>();
            stack.Push(page);
            _bytes += b;
        }
    }

    /// <summary>Drops every kept page (for the garbage collector).</summary>
    public void Clear()
    {
        lock (_lock) { _free.Clear(); _bytes = 0; }
    }
}
