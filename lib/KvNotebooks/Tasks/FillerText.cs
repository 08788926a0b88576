namespace KvNotebooks.Tasks;

/// <summary>
/// The haystack language: a fixed sparse first-order Markov chain over the filler words and ".".
/// Each word has 6 possible successors with skewed probabilities, so text is locally predictable
/// (a model learns it with short-range attention) but carries no long-range information.
/// </summary>
public static class FillerText
{
    private const int Successors = 6;
    private static readonly int[][] Next;
    private static readonly double[][] Cumulative;
    private static readonly int Period = Vocabulary.Default["."];

    static FillerText()
    {
        var v = Vocabulary.Default;
        var rng = new Random(7);
        int n = v.Filler.Count;
        Next = new int[n + 1][];
        Cumulative = new double[n + 1][];
        for (int i = 0; i <= n; i++) // row n: after "."
        {
            var succ = v.Filler.SampleDistinct(rng, Successors).ToList();
            if (i < n && rng.Next(4) == 0) succ[^1] = Period; // some words end sentences
            var w = succ.Select(_ => -Math.Log(1 - rng.NextDouble())).ToArray(); // Dirichlet(1) weights
            double sum = w.Sum(), acc = 0;
            Next[i] = succ.ToArray();
            Cumulative[i] = w.Select(x => acc += x / sum).ToArray();
        }
    }

    /// <summary>Appends <paramref name="count"/> filler tokens continuing from a random state.</summary>
    public static void Append(Random rng, int count, List<int> into)
    {
        var v = Vocabulary.Default;
        int state = rng.Next(v.Filler.Count + 1);
        for (int t = 0; t < count; t++)
        {
            double u = rng.NextDouble();
            var cum = Cumulative[state];
            int k = 0;
            while (k < cum.Length - 1 && u > cum[k]) k++;
            int token = Next[state][k];
            into.Add(token);
            state = token == Period ? v.Filler.Count : token - v.Filler.Start;
        }
    }

    public static int[] Generate(Random rng, int count)
    {
        var list = new List<int>(count);
        Append(rng, count, list);
        return list.ToArray();
    }

    /// <summary>Filler that avoids the given words (the chain is re-drawn at each forbidden word).</summary>
    public static void AppendAvoiding(Random rng, int count, List<int> into, IReadOnlySet<int> forbidden)
    {
        var v = Vocabulary.Default;
        int added = 0;
        while (added < count)
        {
            var chunk = Generate(rng, Math.Min(64, count - added));
            foreach (int t in chunk)
            {
                if (added == count) break;
                into.Add(forbidden.Contains(t) ? RandomAllowed(rng, forbidden, v) : t);
                added++;
            }
        }
    }

    private static int RandomAllowed(Random rng, IReadOnlySet<int> forbidden, Vocabulary v)
    {
        while (true)
        {
            int t = v.Filler.Sample(rng);
            if (!forbidden.Contains(t)) return t;
        }
    }
}
