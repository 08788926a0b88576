namespace KvNotebooks.Tasks;

/// <summary>Builds contexts: items (needles, records, passages) placed at random depths in filler text.</summary>
public static class Haystack
{
    /// <summary>
    /// &lt;bos&gt;, then filler with <paramref name="items"/> inserted in the given order at random
    /// depths, <paramref name="length"/> tokens in all. Returns the tokens and each item's start.
    /// </summary>
    public static (int[] Tokens, int[] Starts) Build(Random rng, int length, IReadOnlyList<int[]> items, IReadOnlySet<int>? avoid = null)
    {
        int itemTokens = items.Sum(i => i.Length);
        int filler = length - 1 - itemTokens;
        if (filler < 0)
            throw new ArgumentException($"a context of {length} tokens cannot hold {items.Count} items of {itemTokens} tokens");
        // Sorted cut points split the filler into items.Count + 1 segments.
        var cuts = Enumerable.Range(0, items.Count).Select(_ => rng.Next(filler + 1)).OrderBy(x => x).ToArray();
        var tokens = new List<int>(length) { Vocabulary.Default.BosId };
        var starts = new int[items.Count];
        int done = 0;
        for (int i = 0; i < items.Count; i++)
        {
            AppendFiller(rng, cuts[i] - done, tokens, avoid);
            done = cuts[i];
            starts[i] = tokens.Count;
            tokens.AddRange(items[i]);
        }
        AppendFiller(rng, filler - done, tokens, avoid);
        return (tokens.ToArray(), starts);
    }

    private static void AppendFiller(Random rng, int n, List<int> into, IReadOnlySet<int>? avoid)
    {
        if (n <= 0) return;
        if (avoid is null) FillerText.Append(rng, n, into);
        else FillerText.AppendAvoiding(rng, n, into, avoid);
    }

    /// <summary>Items that fit: about one per <paramref name="tokensPerItem"/> tokens, within [min, max].</summary>
    public static int Count(int length, int tokensPerItem, int min, int max) => Math.Clamp(length / tokensPerItem, min, max);
}
