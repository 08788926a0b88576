using KvNotebooks.Cache;

namespace KvNotebooks.Inference;

/// <summary>
/// Measures the KV footprint of a run as it happens (docs/footprint.md). For each stored head and each query
/// row, it counts the entries that row's attention could see: within a block of r rows appended to a head
/// holding n entries (the block included), row i sees n − r + i + 1. Summed over heads and rows, divided
/// by heads × T(T+1)/2, that is the footprint. The peak adds, per step (a pre-fill chunk or a decode
/// token), each head's entries at the moment it attends, and keeps the largest step; divided by heads × T
/// it is the peak KV. These are the paper's quantities, which count entries in KV heads; the bytes
/// actually held are read from the cache's allocator.
/// <para>Patched chunked eviction appends the prompt's last tokens after a chunk. Those rows are not
/// positions of the sequence (T = n + m does not count them) and the chunk's rows cannot see their KVs
/// (they come later), so the footprint counts the chunk's rows only; the patch rows' own attention is
/// reported apart (<see cref="PatchRows"/>, <see cref="PatchEntries"/>). Their KVs are in memory while the
/// head attends, so the peak counts them: that is what the cache really holds.</para>
/// <para>Quantized entries are weighted by their bits: a full-precision entry counts 16 bits (the paper's
/// fp16/bf16 baseline, whatever precision the engine computes in), a b-bit entry b, and the footprint is
/// <see cref="EntryBits"/> / (16 × full entries), so a 4-bit cache is a quarter of an fp16 one.</para>
/// </summary>
public sealed class FootprintMeter
{
    private readonly List<StepRecord> _steps = new();
    private long _stepEntries, _stepBits;
    private int _stepRows, _stepPatch;

    public FootprintMeter(int numLayers, int numKvHeads)
    {
        NumHeads = numLayers * numKvHeads;
    }

    /// <summary>(layer, stored head) pairs: the heads the footprint averages over (query heads when
    /// the cache replicates KVs per query head).</summary>
    public int NumHeads { get; }
    /// <summary>Query rows processed so far (T = n + m at the end of a run).</summary>
    public int Rows { get; private set; }
    /// <summary>Σ over heads and rows of the entries each row could see.</summary>
    public long Entries { get; private set; }
    /// <summary>The same, each entry weighted by the bits it is stored in (16 for full precision).</summary>
    public long EntryBits { get; private set; }
    /// <summary>Σ over heads of the entries held while attending, at the largest step.</summary>
    public long PeakEntries { get; private set; }
    /// <summary>The same in bits (the largest step by bits).</summary>
    public long PeakBits { get; private set; }
    /// <summary>Patch rows processed (patched chunked eviction); not part of T.</summary>
    public long PatchRows { get; private set; }
    /// <summary>Σ over heads and patch rows of the entries each patch row saw (extra attention work).</summary>
    public long PatchEntries { get; private set; }
    /// <summary>Entries the same rows would see under full causal attention: heads × T(T+1)/2.</summary>
    public long FullEntries => NumHeads * ((long)Rows * (Rows + 1) / 2);
    /// <summary>Footprint in the paper's sense (bit-weighted; equal to Entries / FullEntries without quantization).</summary>
    public double Footprint => FullEntries == 0 ? 0 : EntryBits / (16.0 * FullEntries);
    public double PeakKv => Rows == 0 ? 0 : PeakBits / (16.0 * NumHeads * Rows);
    /// <summary>One record per step, in order: what was held while attending and after eviction.</summary>
    public IReadOnlyList<StepRecord> Steps => _steps;

    /// <summary>Starts a step of <paramref name="rows"/> query rows of the sequence, followed by
    /// <paramref name="patchRows"/> appended patch rows.</summary>
    public void BeginStep(int rows, int patchRows = 0)
    {
        _stepRows = rows;
        _stepPatch = patchRows;
        _stepEntries = 0;
        _stepBits = 0;
    }

    /// <summary>Records one head right after it attended over this step's rows.</summary>
    public void RecordHead(int heldWhileAttending) => RecordHead(heldWhileAttending, 0, 16);

    /// <summary>Records one head holding <paramref name="heldWhileAttending"/> entries (this step's and the
    /// patch's included), <paramref name="quantized"/> of them stored in <paramref name="bits"/> bits.</summary>
    public void RecordHead(int heldWhileAttending, int quantized, int bits)
    {
        long r = _stepRows, k = _stepPatch;
        long before = heldWhileAttending - k - r;           // entries kept from earlier steps
        if (before < 0) throw new InvalidOperationException($"a head holds {heldWhileAttending} entries, fewer than the step's {r + k} rows");
        long seen = r * before + r * (r + 1) / 2;
        Entries += seen;
        EntryBits += 16 * seen - (16 - bits) * r * quantized; // quantized entries all precede the step
        PatchEntries += k * (before + r) + k * (k + 1) / 2;
        _stepEntries += heldWhileAttending;
        _stepBits += 16L * heldWhileAttending - (16L - bits) * quantized;
    }

    /// <summary>Closes the step; <paramref name="cache"/> is read after eviction.</summary>
    public void EndStep(KvCache cache, bool prefill)
    {
        Rows += _stepRows;
        PatchRows += _stepPatch;
        if (_stepEntries > PeakEntries) PeakEntries = _stepEntries;
        if (_stepBits > PeakBits) PeakBits = _stepBits;
        _steps.Add(new StepRecord(_steps.Count, prefill, Rows, _stepEntries, cache.LiveEntries, cache.AllocatedBytes, cache.PeakAllocatedBytes)
        {
            PatchRows = _stepPatch,
            StepPeakBytes = cache.Pool.StepPeakBytes,
        });
    }
}

/// <summary>One pre-fill chunk or decode step: rows processed so far, entries held while attending
/// (summed over heads), entries and allocated bytes held after eviction, allocator peak so far.
/// <see cref="StepPeakBytes"/> is the most the cache held during this step; <see cref="PatchRows"/>
/// the patch rows appended to it. A timeline of these is what notebooks plot.</summary>
public sealed record StepRecord(int Step, bool Prefill, int RowsSoFar, long EntriesWhileAttending,
                                long EntriesAfterEviction, long AllocatedBytes, long PeakAllocatedBytes)
{
    public int PatchRows { get; init; }
    public long StepPeakBytes { get; init; }
}
