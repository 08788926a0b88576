using System.Globalization;
using KvNotebooks.Footprint;

namespace KvNotebooks.Eviction;

/// <summary>
/// One head's compression: its last <see cref="Candidates"/> entries are candidates, the last <see cref="Window"/> of
/// them always kept (the observation window, or the patch, which <see cref="DropWindow"/> then evicts), and
/// <see cref="Capacity"/> entries of the candidates kept on average over layers, window included — SnapKV's rule:
/// all if the capacity reaches the candidates, only the window if it does not exceed it.
/// </summary>
public readonly record struct Compression(int Candidates, int Window, int Capacity, bool DropWindow)
{
    /// <summary>Candidates that are scored (the window is not).</summary>
    public int Scored => Candidates - Window;
    /// <summary>Candidates kept (averaged over layers), the window included.</summary>
    public int Kept => Capacity >= Candidates ? Candidates : Capacity <= Window ? Window : Capacity;
    /// <summary>Entries that leave the head (averaged over layers): evicted candidates, and the patch when dropped.</summary>
    public int Evicted => Candidates - Kept + (DropWindow ? Window : 0);
}

/// <summary>When a score-based method evicts during pre-fill (docs/methods.md, "Schedules").</summary>
public enum ScheduleKind
{
    /// <summary>Evict once, after the whole prompt is pre-filled, scoring every prompt KV with the
    /// prompt's last queries (the classical SnapKV / PyramidKV / H2O setting). With chunked pre-fill
    /// nothing is evicted before the last chunk, so the peak stays that of full attention.</summary>
    PostFill,
    /// <summary>After each chunk, score that chunk's KVs with the chunk's own last queries and compress
    /// them; KVs kept from earlier chunks are never re-scored.</summary>
    Naive,
    /// <summary>As naive, but every non-final chunk gets the prompt's last <see cref="EvictionSchedule.Window"/>
    /// tokens appended (at positions right after the chunk, as the paper's code does); those queries
    /// score the chunk, then their KVs are dropped.</summary>
    Patched,
}

/// <summary>How a budget is given.</summary>
public enum BudgetKind
{
    /// <summary>A fraction p of each chunk's KVs is evicted by the paper code's integer rule (the "code rule",
    /// <c>--budget-rule code</c>): per-chunk capacity int((1 − p)·c), window included (+ the patch for a patched
    /// chunk); a single pre-fill keeps max(int((1 − p)·n), window) rounded up to a multiple of 64.</summary>
    Evict,
    /// <summary>A fraction p by the accounting rule (the default; docs/footprint.md): each chunk keeps
    /// round((1 − p)·c) of its own KVs plus a window of w (at most the chunk), exactly what
    /// <c>KvFootprint.TokenEviction</c> counts; a single pre-fill keeps round((1 − p)·n) + w (no rounding to 64).</summary>
    EvictPlusWindow,
    /// <summary>An absolute number of prompt KVs per head (averaged over layers). Chunked schedules
    /// split it over chunks in proportion to their length: chunk k gets round(B·b_k/n) − round(B·b_{k−1}/n).</summary>
    Tokens,
}

/// <summary>A KV budget: a fraction evicted per chunk, or an absolute token count.</summary>
public sealed record EvictionBudget
{
    private EvictionBudget(BudgetKind kind, double evict, int tokens)
    {
        Kind = kind;
        Evict = evict;
        Tokens = tokens;
    }

    public BudgetKind Kind { get; }
    /// <summary>p, the fraction evicted (Evict, EvictPlusWindow).</summary>
    public double Evict { get; }
    /// <summary>B, the prompt KVs kept per head (Tokens).</summary>
    public int Tokens { get; }

    /// <summary>Evict a fraction <paramref name="p"/> per chunk by the paper code's rule (the code rule: int((1 − p)·c)).</summary>
    public static EvictionBudget Fraction(double p) => new(BudgetKind.Evict, CheckP(p), 0);
    /// <summary>Evict a fraction <paramref name="p"/> by the accounting rule, keeping round((1 − p)·c) + window per chunk
    /// (the default; docs/footprint.md).</summary>
    public static EvictionBudget FractionPlusWindow(double p) => new(BudgetKind.EvictPlusWindow, CheckP(p), 0);
    /// <summary>Keep <paramref name="tokens"/> prompt KVs per head.</summary>
    public static EvictionBudget Absolute(int tokens) =>
        tokens >= 1 ? new(BudgetKind.Tokens, 0, tokens) : throw new ArgumentException($"--budget must be a positive number of tokens (got {tokens})");

    private static double CheckP(double p) =>
        p >= 0 && p < 1 ? p : throw new ArgumentException($"--evict must be a fraction p in [0, 1) (got {p.ToString(CultureInfo.InvariantCulture)})");

    public override string ToString() => Kind switch
    {
        BudgetKind.Evict => $"evict {Evict.ToString(CultureInfo.InvariantCulture)} (code rule)",
        BudgetKind.EvictPlusWindow => $"evict {Evict.ToString(CultureInfo.InvariantCulture)}",
        _ => $"budget {Tokens}",
    };
}

/// <summary>
/// When and how much a score-based method evicts: the schedule (post-fill, chunked naive, chunked
/// patched), the budget, the observation window (the last <see cref="Window"/> queries score, and their
/// own KVs are always kept; it is also the patch length), and optional eviction while decoding.
/// The method (<see cref="IKvScorer"/>) only says how KVs are scored and how a budget splits over layers.
/// </summary>
public sealed record EvictionSchedule
{
    public ScheduleKind Kind { get; init; } = ScheduleKind.Naive;
    /// <summary>The budget (default: evict half of each chunk by the accounting rule).</summary>
    public EvictionBudget Budget { get; init; } = EvictionBudget.FractionPlusWindow(0.5);
    /// <summary>Observation window k: queries that score, KVs always kept, patch length (paper: 64).</summary>
    public int Window { get; init; } = 64;
    /// <summary>Post-fill capacity is rounded up to a multiple of this (paper code: 64).</summary>
    public int CapacityMultiple { get; init; } = 64;
    /// <summary>Also evict while decoding: a head is cut back to its budget once it exceeds it by
    /// <see cref="DecodeInterval"/>, re-scoring every KV it holds with the last <see cref="Window"/> queries.</summary>
    public bool EvictDuringDecode { get; init; }
    /// <summary>Entries per head while decoding; 0 = the size each head had after pre-fill.</summary>
    public int DecodeBudget { get; init; }
    /// <summary>Decode eviction runs when a head holds budget + this many entries (1 = every step).</summary>
    public int DecodeInterval { get; init; } = 1;
    /// <summary>The prompt's last tokens pre-filled as a chunk of their own (Locret's local tail; 0 = none).</summary>
    public int LocalTail { get; init; }

    /// <summary>How a prompt of <paramref name="promptTokens"/> is cut into chunks under <paramref name="chunking"/>:
    /// the chunking's plan, or with a <see cref="LocalTail"/> its chunks over all but the tail, then the tail.</summary>
    public ChunkPlan Plan(int promptTokens, Chunking chunking) => LocalTail > 0
        ? ChunkPlan.Locret(promptTokens, chunking.EffectiveSize(promptTokens), LocalTail)
        : chunking.Plan(promptTokens);

    public static EvictionSchedule PostFill(EvictionBudget budget, int window = 64) => new() { Kind = ScheduleKind.PostFill, Budget = budget, Window = window };
    public static EvictionSchedule Naive(EvictionBudget budget, int window = 64) => new() { Kind = ScheduleKind.Naive, Budget = budget, Window = window };
    public static EvictionSchedule Patched(EvictionBudget budget, int window = 64) => new() { Kind = ScheduleKind.Patched, Budget = budget, Window = window };

    /// <summary>Short text for tables: "patched, evict 0.5, window 64".</summary>
    public override string ToString() =>
        $"{Kind.ToString().ToLowerInvariant()}, {Budget}, window {Window}" + (EvictDuringDecode ? $", decode eviction{(DecodeBudget > 0 ? $" to {DecodeBudget}" : "")}" : "");

    /// <summary>Throws <see cref="ArgumentException"/> naming the first impossible setting.</summary>
    public void Validate()
    {
        if (Window < 1) throw new ArgumentException($"--obs-window must be ≥ 1 (got {Window})");
        if (CapacityMultiple < 1) throw new ArgumentException($"--capacity-multiple must be ≥ 1 (got {CapacityMultiple})");
        if (Budget.Kind == BudgetKind.Tokens && Budget.Tokens < Window)
            throw new ArgumentException($"--budget {Budget.Tokens} is below the always-kept observation window of {Window} tokens");
        if (DecodeInterval < 1) throw new ArgumentException($"--decode-interval must be ≥ 1 (got {DecodeInterval})");
        if (DecodeBudget < 0) throw new ArgumentException($"--decode-budget must be ≥ 0 (got {DecodeBudget})");
        if (DecodeBudget > 0 && DecodeBudget < Window)
            throw new ArgumentException($"--decode-budget {DecodeBudget} is below the always-kept observation window of {Window} tokens");
        if (DecodeBudget > 0 && !EvictDuringDecode) throw new ArgumentException("--decode-budget needs --decode-evict");
        if (LocalTail < 0) throw new ArgumentException($"the local tail must be ≥ 0 tokens (got {LocalTail})");
    }

    /// <summary>
    /// Capacity when a step's candidates are compressed: entries kept of them, the always-kept window
    /// included, and for a patched chunk the <paramref name="patchRows"/> appended tokens too (the paper
    /// code's <c>capacity_override</c>). Post-fill: the whole prompt's capacity.
    /// </summary>
    public int Capacity(int chunkStart, int chunkLength, int promptLength, int patchRows)
    {
        double r = 1 - Budget.Evict;
        int cap = Kind == ScheduleKind.PostFill
            ? Budget.Kind switch
            {
                BudgetKind.Evict => RoundUp(Math.Max((int)(r * promptLength), Window)),
                BudgetKind.EvictPlusWindow => (int)Math.Round(r * promptLength, MidpointRounding.ToEven) + Window,
                _ => RoundUp(Math.Max(Budget.Tokens, Window)),
            }
            : Budget.Kind switch
            {
                BudgetKind.Evict => (int)(r * chunkLength),
                BudgetKind.EvictPlusWindow => (int)Math.Round(r * chunkLength, MidpointRounding.ToEven) + Window,
                _ => (int)(Share(chunkStart + chunkLength, promptLength) - Share(chunkStart, promptLength)),
            };
        return cap + patchRows;
    }

    /// <summary>
    /// What eviction does to a head after <paramref name="step"/> attended, the head then holding
    /// <paramref name="held"/> entries (the step's rows and patch included): the last <see cref="Compression.Candidates"/>
    /// entries are candidates, of which the last <see cref="Compression.Window"/> are always kept (and dropped
    /// afterwards when they are the patch), and <see cref="Compression.Capacity"/> are kept on average over layers.
    /// Null when nothing is evicted at this step (post-fill before the last chunk; decode steps, see
    /// <see cref="CompressWhileDecoding"/>). The engine (<see cref="ScheduledEviction"/>) and the accountant
    /// (<see cref="KeptAfterChunks"/>) both take their decisions from here.
    /// </summary>
    public Compression? Compress(GenerationStep step, int held)
    {
        if (step.Phase == Phase.Decode) return null;
        if (Kind == ScheduleKind.PostFill)
            return step.IsFinalChunk ? new Compression(held, Math.Min(Window, held), Capacity(0, step.PromptLength, step.PromptLength, 0), false) : null;
        int cand = step.Rows, w = step.PatchLength > 0 ? step.PatchLength : Math.Min(Window, cand);
        return new Compression(cand, w, Capacity(step.Start, step.Length, step.PromptLength, step.PatchLength), step.PatchLength > 0);
    }

    /// <summary>Decode-time eviction of a head holding <paramref name="held"/> entries with a budget of
    /// <paramref name="budget"/>: every entry is a candidate once the head exceeds the budget by
    /// <see cref="DecodeInterval"/>; null otherwise (or without <see cref="EvictDuringDecode"/>).</summary>
    public Compression? CompressWhileDecoding(int held, int budget)
    {
        if (!EvictDuringDecode || held < budget + DecodeInterval) return null;
        int w = Math.Min(Window, held);
        return new Compression(held, w, Math.Max(budget, w), false);
    }

    /// <summary>
    /// Per chunk of <paramref name="plan"/>, the prompt KVs each head holds (on average over layers)
    /// once that chunk is evicted, P_k, and the patch rows appended to it: what the engine does, for
    /// <c>KvFootprint.Scheduled</c>.
    /// </summary>
    public (long[] Kept, int[] Patch) KeptAfterChunks(ChunkPlan plan)
    {
        var steps = plan.Steps(PatchLength);
        var kept = new long[steps.Count];
        var patches = new int[steps.Count];
        long P = 0;
        for (int k = 0; k < steps.Count; k++)
        {
            long held = P + steps[k].Rows;
            P = held - (Compress(steps[k], (int)held)?.Evicted ?? 0);
            kept[k] = P;
            patches[k] = steps[k].PatchLength;
        }
        return (kept, patches);
    }

    /// <summary>Patch rows appended to every non-final chunk: the observation window when patched, else 0.</summary>
    public int PatchLength => Kind == ScheduleKind.Patched ? Window : 0;

    private int RoundUp(int x) => (x + CapacityMultiple - 1) / CapacityMultiple * CapacityMultiple;

    /// <summary>round(B·b / n), half up, in integers.</summary>
    private long Share(long b, long n) => (2L * Budget.Tokens * b + n) / (2 * n);
}
