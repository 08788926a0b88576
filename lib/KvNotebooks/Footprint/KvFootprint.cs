using KvNotebooks.Cache;
using KvNotebooks.Eviction;

namespace KvNotebooks.Footprint;

/// <summary>
/// A method's footprint: <see cref="Entries"/> of <see cref="FullEntries"/> (heads × T(T+1)/2), and its
/// peak: the head-summed entries held at the worst time point, <see cref="PeakKv"/> = that / (heads × T).
/// Fractions (0.722 = 72.2%). For the paper's fractional head mix (<see cref="KvFootprint.Duo"/>) the
/// integer fields are per head-weighted unit and only the fractions are meaningful.
/// </summary>
public sealed record FootprintResult(long Entries, long FullEntries, long PeakEntries, int Heads, int SequenceLength,
                                     double Footprint, double PeakKv)
{
    /// <summary>Σ of bits seen (16 per full-precision entry); 16 × Entries unless the method quantizes.</summary>
    public long EntryBits { get; init; } = 16 * Entries;
    public double FootprintPercent => Footprint * 100;
    public double PeakKvPercent => PeakKv * 100;
}

/// <summary>
/// The analytic accountant: the formulas of the paper's <c>eval/viz/kv_footprint.py</c> (docs/footprint.md).
/// Everything is per head; T = n + m; full attention counts T(T+1)/2.
/// </summary>
public static class KvFootprint
{
    /// <summary>Full attention with chunked pre-fill (100%; the peak is (n+m)/T = 1 as well); over quantized
    /// storage (<paramref name="q"/>), counted in bits as the quantized method.</summary>
    public static FootprintResult Full(ChunkPlan plan, int m, KvQuantization? q = null) =>
        q is null ? Single(plan, m, HeadAccount.Full(plan, m)) : Quantized(plan, m, q);

    /// <summary>
    /// An exact integer mix of <paramref name="streamingHeads"/> streaming heads and full heads out of
    /// <paramref name="totalHeads"/>: entries = s·A_stream + (H − s)·A_full, peak = max over time points of
    /// s·peak_stream[t] + (H − s)·peak_full[t]. This is what the engine's meter measures for a head mask.
    /// </summary>
    public static FootprintResult HeadMix(ChunkPlan plan, int m, int streamingHeads, int totalHeads, int sink, int window, KvQuantization? q = null)
    {
        if (totalHeads <= 0) throw new ArgumentOutOfRangeException(nameof(totalHeads), totalHeads, "total heads must be positive");
        if (streamingHeads < 0 || streamingHeads > totalHeads)
            throw new ArgumentOutOfRangeException(nameof(streamingHeads), streamingHeads, $"streaming heads must be in [0, {totalHeads}]");
        if (q is not null) return MixInBits(plan, m, (double)streamingHeads / totalHeads, sink, window, q);
        var s = HeadAccount.Streaming(plan, m, sink, window);
        var g = HeadAccount.Full(plan, m);
        int full = totalHeads - streamingHeads;
        long entries = streamingHeads * s.Entries + full * g.Entries;
        long peak = 0;
        for (int t = 0; t < s.PeakPoints.Length; t++) peak = Math.Max(peak, streamingHeads * s.PeakPoints[t] + full * g.PeakPoints[t]);
        long T = plan.PromptTokens + (long)m;
        long fullEntries = totalHeads * (T * (T + 1) / 2);
        return new FootprintResult(entries, fullEntries, peak, totalHeads, (int)T,
            (double)entries / fullEntries, (double)peak / ((double)totalHeads * T));
    }

    /// <summary>
    /// DuoAttention / PruLong as the paper's code computes it: a fraction h of heads streaming,
    /// footprint = h·A_stream/F + (1 − h)·A_global(p=0)/F, peak = max over time of the h-weighted mix / T.
    /// </summary>
    public static FootprintResult Duo(ChunkPlan plan, int m, double headSparsity, int sink = 128, int window = 1024, KvQuantization? q = null)
    {
        HeadAccount.CheckFraction(headSparsity, "headSparsity");
        if (q is not null) return MixInBits(plan, m, headSparsity, sink, window, q);
        var s = HeadAccount.Streaming(plan, m, sink, window);
        var g = HeadAccount.Full(plan, m);
        long T = plan.PromptTokens + (long)m, F = T * (T + 1) / 2;
        double footprint = headSparsity * s.Entries / F + (1 - headSparsity) * (double)g.Entries / F;
        double peak = 0;
        for (int t = 0; t < s.PeakPoints.Length; t++) peak = Math.Max(peak, headSparsity * s.PeakPoints[t] + (1 - headSparsity) * g.PeakPoints[t]);
        double entries = headSparsity * s.Entries + (1 - headSparsity) * g.Entries;
        return new FootprintResult((long)Math.Round(entries), F, (long)Math.Round(peak), 1, (int)T, footprint, peak / T);
    }

    /// <summary>
    /// Token eviction in chunks (PyramidKV / SnapKV, naive or patched; docs/footprint.md): each chunk keeps
    /// round((1 − p)·c) of its tokens plus <paramref name="window0"/> (the always-kept window / patch), at
    /// most the chunk; nothing is evicted while decoding. A single pre-fill is a one-chunk plan.
    /// </summary>
    public static FootprintResult TokenEviction(ChunkPlan plan, int m, double evict, int window0 = 64) =>
        Single(plan, m, HeadAccount.Global(plan, m, evict, window0));

    /// <summary>
    /// A score-based method as the engine runs it under <paramref name="schedule"/> (post-fill, chunked
    /// naive or patched; the paper code's integer capacities or the accountant's, absolute budgets): per
    /// chunk the KVs kept are what <see cref="EvictionSchedule.KeptAfterChunks"/> says, averaged over layers
    /// (PyramidKV's and ZigZagKV's layer budgets sum to L times the average, so the head average is the
    /// same); the patch's KVs count in the peak, not in the footprint. Nothing is evicted while decoding.
    /// The engine's meter equals this to the entry. With <see cref="BudgetKind.EvictPlusWindow"/> and no
    /// patch this is exactly <see cref="TokenEviction"/>.
    /// </summary>
    public static FootprintResult Scheduled(ChunkPlan plan, int m, EvictionSchedule schedule, KvQuantization? q = null)
    {
        schedule.Validate();
        if (q is not null)
        {
            if (schedule.Kind == ScheduleKind.PostFill || schedule.EvictDuringDecode)
                throw new ArgumentException("the accountant cannot count post-fill or decode-time eviction over quantized storage: " +
                    "which quantized entries survive is decided by scores (run it and measure it instead)");
            var trace = HeadAccount.QuantizedTrace(plan.Steps(schedule.PatchLength), m, q,
                (step, held, quantized) => (held - (schedule.Compress(step, (int)held)?.Evicted ?? 0), quantized));
            return InBits(plan, m, trace);
        }
        var (kept, patch) = schedule.KeptAfterChunks(plan);
        return Single(plan, m, HeadAccount.Chunked(plan, m, kept, patch));
    }

    /// <summary>
    /// KV quantization (nothing evicted) in bits: <see cref="FootprintResult.Footprint"/> and
    /// <see cref="FootprintResult.PeakKv"/> weight a b-bit entry b/16 of a full-precision one;
    /// <see cref="FootprintResult.Entries"/> and <see cref="FootprintResult.PeakEntries"/> are in bits / 16.
    /// </summary>
    public static FootprintResult Quantized(ChunkPlan plan, int m, KvQuantization q)
    {
        if ((q.Format == KvFormat.Codes ? q.Bits is not (2 or 4 or 8) : q.Bits != 16) || q.GroupSize < 1 || q.Residual < 0)
            throw new ArgumentException("quantization needs bits 2, 4 or 8 (16 for fp16/bf16), group size ≥ 1 and residual ≥ 0");
        var a = HeadAccount.QuantizedBits(plan, m, q.Bits, q.GroupSize, q.Residual);
        long T = plan.PromptTokens + (long)m, F = T * (T + 1) / 2;
        long peak = a.PeakPoints.Max();
        return new FootprintResult(a.Entries / 16, F, peak / 16, 1, (int)T, a.Entries / (16.0 * F), peak / (16.0 * T))
        {
            EntryBits = a.Entries,
        };
    }

    /// <summary>Locret (docs/footprint.md): its own chunk plan (last <paramref name="localLen"/> prompt tokens
    /// alone), P_k = P_{k−1} + min(round((1 − s)·c_k) + stabilizers, c_k).</summary>
    public static FootprintResult Locret(int n, int m, int chunkSize, double sparsity, int stabilizers = 2500, int localLen = 100)
    {
        var plan = ChunkPlan.Locret(n, chunkSize, localLen);
        return Single(plan, m, HeadAccount.Global(plan, m, sparsity, stabilizers));
    }

    /// <summary>A fraction <paramref name="h"/> of streaming heads (sink + window) and the rest full, over quantized
    /// storage, in bits: each kind of head followed step by step (<see cref="HeadAccount.QuantizedTrace"/>); a
    /// streaming head keeps its first S and last W entries, so of the Q quantized (oldest) ones it keeps
    /// min(S, Q) + max(0, Q − max(S, N − W)).</summary>
    private static FootprintResult MixInBits(ChunkPlan plan, int m, double h, int sink, int window, KvQuantization q)
    {
        var steps = plan.Steps();
        var full = HeadAccount.QuantizedTrace(steps, m, q, (_, held, quantized) => (held, quantized));
        var stream = HeadAccount.QuantizedTrace(steps, m, q, (_, held, quantized) => held <= sink + window ? (held, quantized)
            : (sink + window, Math.Min(sink, quantized) + Math.Max(0, quantized - Math.Max(sink, held - window))));
        long T = plan.PromptTokens + (long)m, F = T * (T + 1) / 2;
        double bits = h * stream.Entries + (1 - h) * full.Entries, peak = 0;
        for (int t = 0; t < full.PeakPoints.Length; t++) peak = Math.Max(peak, h * stream.PeakPoints[t] + (1 - h) * full.PeakPoints[t]);
        return new FootprintResult((long)Math.Round(bits / 16), F, (long)Math.Round(peak / 16), 1, (int)T, bits / (16.0 * F), peak / (16.0 * T))
        {
            EntryBits = (long)Math.Round(bits),
        };
    }

    /// <summary>A result counted in bits (<see cref="HeadAccount.QuantizedTrace"/>).</summary>
    private static FootprintResult InBits(ChunkPlan plan, int m, HeadAccount a)
    {
        long T = plan.PromptTokens + (long)m, F = T * (T + 1) / 2;
        long peak = a.PeakPoints.Max();
        return new FootprintResult(a.Entries / 16, F, peak / 16, 1, (int)T, a.Entries / (16.0 * F), peak / (16.0 * T)) { EntryBits = a.Entries };
    }

    private static FootprintResult Single(ChunkPlan plan, int m, HeadAccount a)
    {
        long T = plan.PromptTokens + (long)m, F = T * (T + 1) / 2;
        long peak = a.PeakPoints.Max();
        return new FootprintResult(a.Entries, F, peak, 1, (int)T, (double)a.Entries / F, (double)peak / T);
    }
}
