namespace KvNotebooks.Footprint;

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

    /// <summary>Locret's plan (PAPER.md §2.5): chunks of C over the first n − localLen tokens, then the
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

    private static IEnumerable<int> Split(int n, int c)
    {
        for (int start = 0; start < n; start += c) yield return Math.Min(c, n - start);
    }
}
