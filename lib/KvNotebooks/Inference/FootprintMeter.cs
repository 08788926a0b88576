using KvNotebooks.Cache;

namespace KvNotebooks.Inference;

/// <summary>
/// Measures the KV footprint of a run as it happens (PAPER.md §1.1). For each (layer, KV head) and
/// each query row, it counts the entries that row's attention could see: within a block of r rows
/// appended to a head holding n entries (the block included), row i sees n − r + i + 1. Summed over
/// heads and rows, divided by heads × T(T+1)/2, that is the footprint. The peak adds, per step (a
/// pre-fill chunk or a decode token), each head's entries at the moment it attends, and keeps the
/// largest step; divided by heads × T it is the peak KV. These are the paper's quantities, which count
/// entries in KV heads; the bytes actually held are read from the cache's allocator.
/// </summary>
public sealed class FootprintMeter
{
    private readonly List<StepRecord> _steps = new();
    private long _stepEntries;
    private int _stepRows;

    public FootprintMeter(int numLayers, int numKvHeads)
    {
        NumHeads = numLayers * numKvHeads;
    }

    /// <summary>(layer, KV head) pairs: the heads the footprint averages over.</summary>
    public int NumHeads { get; }
    /// <summary>Query rows processed so far (T = n + m at the end of a run).</summary>
    public int Rows { get; private set; }
    /// <summary>Σ over heads and rows of the entries each row could see.</summary>
    public long Entries { get; private set; }
    /// <summary>Σ over heads of the entries held while attending, at the largest step.</summary>
    public long PeakEntries { get; private set; }
    /// <summary>Entries the same rows would see under full causal attention: heads × T(T+1)/2.</summary>
    public long FullEntries => NumHeads * ((long)Rows * (Rows + 1) / 2);
    public double Footprint => FullEntries == 0 ? 0 : (double)Entries / FullEntries;
    public double PeakKv => Rows == 0 ? 0 : (double)PeakEntries / ((double)NumHeads * Rows);
    /// <summary>One record per step, in order: what was held while attending and after eviction.</summary>
    public IReadOnlyList<StepRecord> Steps => _steps;

    /// <summary>Starts a step of <paramref name="rows"/> query rows.</summary>
    public void BeginStep(int rows)
    {
        _stepRows = rows;
        _stepEntries = 0;
    }

    /// <summary>Records one head right after it attended over this step's rows.</summary>
    public void RecordHead(int heldWhileAttending)
    {
        long n = heldWhileAttending, r = _stepRows;
        Entries += r * (n - r) + r * (r + 1) / 2;
        _stepEntries += n;
    }

    /// <summary>Closes the step; <paramref name="cache"/> is read after eviction.</summary>
    public void EndStep(KvCache cache, bool prefill)
    {
        Rows += _stepRows;
        if (_stepEntries > PeakEntries) PeakEntries = _stepEntries;
        _steps.Add(new StepRecord(_steps.Count, prefill, Rows, _stepEntries, cache.LiveEntries, cache.AllocatedBytes, cache.PeakAllocatedBytes));
    }
}

/// <summary>One pre-fill chunk or decode step: rows processed so far, entries held while attending
/// (summed over heads), entries and allocated bytes held after eviction, allocator peak so far.</summary>
public sealed record StepRecord(int Step, bool Prefill, int RowsSoFar, long EntriesWhileAttending,
                                long EntriesAfterEviction, long AllocatedBytes, long PeakAllocatedBytes);
