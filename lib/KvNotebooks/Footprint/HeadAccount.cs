namespace KvNotebooks.Footprint;

/// <summary>
/// One head's account under the paper code's conventions (docs/footprint.md): <see cref="Entries"/> is the
/// area, Σ over query rows of the entries not evicted; <see cref="PeakPoints"/> holds the entries held
/// at each time point the paper samples: one per pre-fill chunk, then one at the end of decoding (m &gt; 0).
/// </summary>
public sealed record HeadAccount(long Entries, long[] PeakPoints)
{
    /// <summary>A streaming head with <paramref name="sink"/> sink tokens S and a local window W:
    /// w(a) = min(a, W) and s(a) = min(a − w(a), S) earlier tokens are kept at position a.
    /// Chunk k adds c_k(c_k+1)/2 + c_k·(w(b_{k−1}) + s(b_{k−1})); decode at position a adds 1 + w(a) + s(a).</summary>
    public static HeadAccount Streaming(ChunkPlan plan, int m, int sink, int window)
    {
        CheckSizes(m, sink, window);
        long W(long a) => Math.Min(a, window);
        long S(long a) => Math.Min(a - W(a), sink);
        long entries = 0, b = 0;
        var peaks = new List<long>();
        foreach (int c in plan.Sizes)
        {
            long kept = W(b) + S(b);
            entries += (long)c * (c + 1) / 2 + c * kept;
            peaks.Add(c + kept);
            b += c;
        }
        for (long a = b; a < b + m; a++) entries += 1 + W(a) + S(a);
        if (m > 0)
        {
            long last = b + m - 1;
            peaks.Add(1 + W(last) + S(last));
        }
        return new HeadAccount(entries, peaks.ToArray());
    }

    /// <summary>A token-eviction ("global") head keeping r = 1 − p of each chunk plus
    /// <paramref name="extraPerChunk"/> (w₀): P_k = P_{k−1} + min(round(r·c_k) + w₀, c_k), with Python's
    /// round (half to even). Chunk k adds c_k(c_k+1)/2 + P_{k−1}·c_k; decoding adds m(m+1)/2 + P_K·m
    /// (nothing is evicted while decoding). With p = 0 this is full attention.</summary>
    public static HeadAccount Global(ChunkPlan plan, int m, double evict, int extraPerChunk = 64)
    {
        CheckFraction(evict, "evict");
        return GlobalKeeping(plan, m, 1.0 - evict, extraPerChunk);
    }

    internal static HeadAccount GlobalKeeping(ChunkPlan plan, int m, double keep, int extraPerChunk)
    {
        CheckSizes(m, extraPerChunk, 0);
        long entries = 0, P = 0;
        var peaks = new List<long>();
        foreach (int c in plan.Sizes)
        {
            entries += (long)c * (c + 1) / 2 + P * c;
            peaks.Add(P + c);
            P += Math.Min((long)Math.Round(keep * c, MidpointRounding.ToEven) + extraPerChunk, c);
        }
        entries += (long)m * (m + 1) / 2 + P * m;
        if (m > 0) peaks.Add(P + m);
        return new HeadAccount(entries, peaks.ToArray());
    }

    /// <summary>
    /// A token-eviction head given, per chunk, the prompt KVs it holds once that chunk is evicted
    /// (<paramref name="keptAfter"/>[k] = P_k) and the patch rows appended to it: chunk k adds
    /// c_k(c_k+1)/2 + P_{k−1}·c_k (the patch rows are not sequence rows), its peak point is
    /// P_{k−1} + c_k + patch_k (the patch's KVs are held while the chunk attends); decoding adds
    /// m(m+1)/2 + P_K·m. <see cref="Global"/> is the case P_k = P_{k−1} + min(round(r·c_k) + w₀, c_k), no patch.
    /// </summary>
    public static HeadAccount Chunked(ChunkPlan plan, int m, IReadOnlyList<long> keptAfter, IReadOnlyList<int>? patch = null)
    {
        CheckSizes(m, 0, 0);
        if (keptAfter.Count != plan.Count) throw new ArgumentException($"{keptAfter.Count} kept counts for {plan.Count} chunks");
        long entries = 0, P = 0;
        var peaks = new List<long>();
        for (int k = 0; k < plan.Count; k++)
        {
            long c = plan.Sizes[k];
            entries += c * (c + 1) / 2 + P * c;
            peaks.Add(P + c + (patch?[k] ?? 0));
            P = keptAfter[k];
        }
        entries += (long)m * (m + 1) / 2 + P * m;
        if (m > 0) peaks.Add(P + m);
        return new HeadAccount(entries, peaks.ToArray());
    }

    /// <summary>
    /// A quantized head (nothing evicted): after every step holding N entries, G·⌊max(0, N − R)/G⌋ of
    /// them are b-bit codes, the rest full precision. Entries are counted in bits (16 per full-precision
    /// entry, b per code): chunk k's rows see the Q quantized entries before it plus the rest causally.
    /// </summary>
    public static HeadAccount QuantizedBits(ChunkPlan plan, int m, int bits, int groupSize, int residual)
    {
        CheckSizes(m, 0, residual);
        long Q(long n) => Math.Max(0, n - residual) / groupSize * groupSize;
        long bitsSeen = 0, b = 0;
        var peaks = new List<long>();
        void Step(long c)
        {
            long q = Q(b);
            bitsSeen += 16 * (c * b + c * (c + 1) / 2) - (16L - bits) * c * q;
            peaks.Add(16 * (b + c) - (16L - bits) * q);
            b += c;
        }
        foreach (int c in plan.Sizes) Step(c);
        var prefillPeaks = peaks.Count;
        for (int t = 0; t < m; t++) Step(1);
        // Sampled like the other accounts: one point per chunk, one at the end of decoding.
        var points = peaks.Take(prefillPeaks).ToList();
        if (m > 0) points.Add(peaks.Skip(prefillPeaks).Max());
        return new HeadAccount(bitsSeen, points.ToArray());
    }

    /// <summary>
    /// A head over quantized storage (<paramref name="q"/>), counted in bits (16 per full-precision entry, b per code)
    /// by following it step by step: before a step of c rows (+ patch) it holds N entries, the oldest Q of them
    /// quantized; its rows see c·N + c(c+1)/2 entries, of which c·Q are codes; while it attends it holds N + c + patch
    /// (a peak point per chunk, and the largest over decoding). Then <paramref name="evict"/> says what the head keeps
    /// of the N + c + patch it holds — (entries, of which quantized) — and the storage turns every whole group of
    /// entries older than its full-precision window into codes: Q ← Q + G·⌊max(0, N − Q − R)/G⌋. With nothing evicted
    /// this is <see cref="QuantizedBits"/>.
    /// </summary>
    /// <param name="evict">(step, entries held, of which quantized) → (entries kept, of which quantized).</param>
    public static HeadAccount QuantizedTrace(IReadOnlyList<Footprint.GenerationStep> prefill, int m, Cache.KvQuantization q,
        Func<Footprint.GenerationStep, long, long, (long Kept, long Quantized)> evict)
    {
        CheckSizes(m, 0, q.Residual);
        long bitsSeen = 0, N = 0, Q = 0;
        var points = new List<long>();
        long decodePeak = 0;
        int n = prefill.Count == 0 ? 0 : prefill[0].PromptLength;
        IEnumerable<Footprint.GenerationStep> Steps()
        {
            foreach (var s in prefill) yield return s;
            for (int t = 0; t < m; t++) yield return Footprint.GenerationStep.Decode(t, n + t, n);
        }
        foreach (var step in Steps())
        {
            long c = step.Length, held = N + c + step.PatchLength;
            bitsSeen += 16 * (c * N + c * (c + 1) / 2) - (16L - q.Bits) * c * Q;
            long peak = 16 * held - (16L - q.Bits) * Q;
            if (step.Phase == Footprint.Phase.Prefill) points.Add(peak);
            else decodePeak = Math.Max(decodePeak, peak);
            (N, Q) = evict(step, held, Q);
            if (Q < 0 || Q > N) throw new InvalidOperationException($"a head cannot keep {Q} quantized of {N} entries");
            Q += Math.Max(0, N - Q - q.Residual) / q.GroupSize * q.GroupSize;
        }
        if (m > 0) points.Add(decodePeak);
        return new HeadAccount(bitsSeen, points.ToArray());
    }

    /// <summary>Full attention: every entry stays.</summary>
    public static HeadAccount Full(ChunkPlan plan, int m) => GlobalKeeping(plan, m, 1.0, 0);

    internal static void CheckSizes(int m, int sink, int window)
    {
        if (m < 0) throw new ArgumentOutOfRangeException("genTokens", m, "generated tokens must be ≥ 0");
        if (sink < 0) throw new ArgumentOutOfRangeException(nameof(sink), sink, "sink must be ≥ 0");
        if (window < 0) throw new ArgumentOutOfRangeException(nameof(window), window, "window must be ≥ 0");
    }

    internal static void CheckFraction(double x, string name)
    {
        if (!(x >= 0 && x <= 1)) throw new ArgumentOutOfRangeException(name, x, $"{name} must be in [0, 1]");
    }
}
