namespace KvNotebooks.Footprint;

/// <summary>Which stage of inference a step belongs to.</summary>
public enum Phase { Prefill, Decode }

/// <summary>
/// One forward pass of a generation: a pre-fill chunk of <see cref="Length"/> prompt tokens starting at position
/// <see cref="Start"/>, followed by <see cref="PatchLength"/> patch rows (the prompt's last tokens, patched chunked
/// eviction), or one decode token. <see cref="Index"/> counts chunks, or decode steps. Immutable.
/// </summary>
public readonly record struct GenerationStep(Phase Phase, int Index, int Start, int Length, int PatchLength, bool IsFinalChunk, int PromptLength)
{
    /// <summary>Query rows of the pass: the chunk plus its patch (1 when decoding).</summary>
    public int Rows => Length + PatchLength;

    /// <summary>A decode step feeding the token at <paramref name="position"/>.</summary>
    public static GenerationStep Decode(int index, int position, int promptLength) => new(Phase.Decode, index, position, 1, 0, false, promptLength);
}

/// <summary>
/// How a prompt of n tokens is pre-filled: chunk sizes c_1 … c_K (0 = b_0 &lt; b_1 &lt; … &lt; b_K = n).
/// Chunks have size C except the last, which takes the remainder; C ≥ n is a single pre-fill.
/// </summary>
public sealed class ChunkPlan
{
    private readonly int[] _sizes;

    /// <summary>Chunks of <paramref name="chunkSize"/> over a prompt of <paramref name="promptTokens"/>.</summary>
    public ChunkPlan(int promptTokens, int chunkSize)
    {
        if (promptTokens <= 0) throw new ArgumentOutOfRangeException(nameof(promptTokens), promptTokens, "the prompt must have at least one token");
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "the chunk size must be positive");
        _sizes = Split(promptTokens, chunkSize).ToArray();
        PromptTokens = promptTokens;
    }

    private ChunkPlan(int[] sizes)
    {
        _sizes = sizes;
        PromptTokens = sizes.Sum();
    }

    /// <summary>Locret's plan (docs/methods.md, "Locret"): chunks of C over the first n − localLen tokens, then the
    /// last <paramref name="localLen"/> prompt tokens as their own final chunk.</summary>
    public static ChunkPlan Locret(int promptTokens, int chunkSize, int localLen = 100)
    {
        if (promptTokens <= 0) throw new ArgumentOutOfRangeException(nameof(promptTokens), promptTokens, "the prompt must have at least one token");
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "the chunk size must be positive");
        if (localLen < 0) throw new ArgumentOutOfRangeException(nameof(localLen), localLen, "local length must be ≥ 0");
        int head = Math.Max(0, promptTokens - localLen);
        var sizes = Split(head, chunkSize).ToList();
        if (promptTokens - head > 0) sizes.Add(promptTokens - head);
        return new ChunkPlan(sizes.ToArray());
    }

    public int PromptTokens { get; }
    /// <summary>c_1 … c_K.</summary>
    public IReadOnlyList<int> Sizes => _sizes;
    public int Count => _sizes.Length;

    /// <summary>
    /// The pre-fill steps of this plan, the one definition of what each forward pass holds: chunk k's prompt tokens
    /// [b_{k−1}, b_k) and, for patched chunked eviction, the prompt's last <paramref name="patchLength"/> tokens
    /// appended to every non-final chunk (at the positions right after the chunk, as the paper's code does; their
    /// KVs are dropped after scoring). The session runs these, the meter and the accountant count them.
    /// </summary>
    public IReadOnlyList<GenerationStep> Steps(int patchLength = 0)
    {
        if (patchLength < 0) throw new ArgumentOutOfRangeException(nameof(patchLength), patchLength, "the patch length must be ≥ 0");
        int n = PromptTokens, patch = Math.Min(patchLength, n), start = 0;
        var steps = new GenerationStep[_sizes.Length];
        for (int k = 0; k < _sizes.Length; k++)
        {
            bool final = k == _sizes.Length - 1;
            steps[k] = new GenerationStep(Phase.Prefill, k, start, _sizes[k], final ? 0 : patch, final, n);
            start += _sizes[k];
        }
        return steps;
    }

    private static IEnumerable<int> Split(int n, int c)
    {
        for (int start = 0; start < n; start += c) yield return Math.Min(c, n - start);
    }
}
