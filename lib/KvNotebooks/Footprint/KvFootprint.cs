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
    public double FootprintPercent => Footprint * 100;
    public double PeakKvPercent => PeakKv * 100;
}

/// <summary>
/// The analytic accountant: PAPER.md §1.2, the formulas of the paper's <c>eval/viz/kv_footprint.py</c>.
/// Everything is per head; T = n + m; full attention counts T(T+1)/2.
/// </summary>
public static class KvFootprint
{
    public static readonly string[] Methods = ["full", "streaming", "duo", "prulong", "snapkv", "pyramidkv", "locret"];

    /// <summary>Full attention with chunked pre-fill (100%; the peak is (n+m)/T = 1 as well).</summary>
    public static FootprintResult Full(ChunkPlan plan, int m) => Single(plan, m, HeadAccount.Full(plan, m));

    /// <summary>
    /// An exact integer mix of <paramref name="streamingHeads"/> streaming heads and full heads out of
    /// <paramref name="totalHeads"/>: entries = s·A_stream + (H − s)·A_full, peak = max over time points of
    /// s·peak_stream[t] + (H − s)·peak_full[t]. This is what the engine's meter measures for a head mask.
    /// </summary>
    public static FootprintResult HeadMix(ChunkPlan plan, int m, int streamingHeads, int totalHeads, int sink, int window)
    {
        if (totalHeads <= 0) throw new ArgumentOutOfRangeException(nameof(totalHeads), totalHeads, "total heads must be positive");
        if (streamingHeads < 0 || streamingHeads > totalHeads)
            throw new ArgumentOutOfRangeException(nameof(streamingHeads), streamingHeads, $"streaming heads must be in [0, {totalHeads}]");
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
    public static FootprintResult Duo(ChunkPlan plan, int m, double headSparsity, int sink = 128, int window = 1024)
    {
        HeadAccount.CheckFraction(headSparsity, "headSparsity");
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
    /// Token eviction in chunks (PyramidKV / SnapKV, naive or patched, PAPER.md §2.4): each chunk keeps
    /// round((1 − p)·c) of its tokens plus <paramref name="window0"/> (the always-kept window / patch), at
    /// most the chunk; nothing is evicted while decoding. A single pre-fill is a one-chunk plan.
    /// </summary>
    public static FootprintResult TokenEviction(ChunkPlan plan, int m, double evict, int window0 = 64) =>
        Single(plan, m, HeadAccount.Global(plan, m, evict, window0));

    /// <summary>Locret (PAPER.md §2.5): its own chunk plan (last <paramref name="localLen"/> prompt tokens
    /// alone), P_k = P_{k−1} + min(round((1 − s)·c_k) + stabilizers, c_k).</summary>
    public static FootprintResult Locret(int n, int m, int chunkSize, double sparsity, int stabilizers = 2500, int localLen = 100)
    {
        var plan = ChunkPlan.Locret(n, chunkSize, localLen);
        return Single(plan, m, HeadAccount.Global(plan, m, sparsity, stabilizers));
    }

    /// <summary>Any method by its CLI name.</summary>
    public static FootprintResult ForMethod(FootprintQuery q)
    {
        var plan = new ChunkPlan(q.PromptTokens, q.ChunkSize);
        return q.Method.ToLowerInvariant() switch
        {
            "full" => Full(plan, q.GenTokens),
            "streaming" => Duo(plan, q.GenTokens, 1.0, q.Sink, q.Window),
            "duo" or "duoattention" or "prulong" => Duo(plan, q.GenTokens, q.HeadSparsity, q.Sink, q.Window),
            "snapkv" or "pyramidkv" => TokenEviction(plan, q.GenTokens, q.Evict, q.PatchWindow),
            "locret" => Locret(q.PromptTokens, q.GenTokens, q.ChunkSize, q.Evict, q.Stabilizers, q.LocalLen),
            _ => throw new ArgumentException($"unknown method '{q.Method}'; choose one of {string.Join(", ", Methods)}"),
        };
    }

    private static FootprintResult Single(ChunkPlan plan, int m, HeadAccount a)
    {
        long T = plan.PromptTokens + (long)m, F = T * (T + 1) / 2;
        long peak = a.PeakPoints.Max();
        return new FootprintResult(a.Entries, F, peak, 1, (int)T, (double)a.Entries / F, (double)peak / T);
    }
}

/// <summary>The inputs of <c>kvnb footprint</c>, with the paper's defaults.</summary>
public sealed record FootprintQuery(string Method, int PromptTokens, int GenTokens, int ChunkSize = 32768,
    double HeadSparsity = 0.5, double Evict = 0.5, int Sink = 128, int Window = 1024,
    int Stabilizers = 2500, int LocalLen = 100, int PatchWindow = 64);
