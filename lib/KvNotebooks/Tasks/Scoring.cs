namespace KvNotebooks.Tasks;

/// <summary>The metrics of the task suite (HELMET's, on token ids).</summary>
public static class Scoring
{
    /// <summary>1 if <paramref name="gold"/> occurs as a contiguous run inside <paramref name="generated"/>, else 0 (SubEM).</summary>
    public static double SubstringExactMatch(ReadOnlySpan<int> gold, ReadOnlySpan<int> generated) =>
        gold.Length > 0 && generated.IndexOf(gold) >= 0 ? 1.0 : 0.0;

    /// <summary>1 if the generation is exactly the gold answer.</summary>
    public static double ExactMatch(ReadOnlySpan<int> gold, ReadOnlySpan<int> generated) => gold.SequenceEqual(generated) ? 1.0 : 0.0;

    /// <summary>Fraction of the gold tokens that appear anywhere in the generation (RULER's recall for multi-value needles).</summary>
    public static double Recall(ReadOnlySpan<int> gold, ReadOnlySpan<int> generated)
    {
        if (gold.IsEmpty) return 0;
        int found = 0;
        foreach (int g in gold) if (generated.Contains(g)) found++;
        return (double)found / gold.Length;
    }

    /// <summary>NDCG@k of a ranked list of ids against graded relevance (gain 2^grade − 1, log2 discount);
    /// unknown and repeated ids gain nothing.</summary>
    public static double Ndcg(ReadOnlySpan<int> ranked, IReadOnlyDictionary<int, int> grades, int k = 10)
    {
        double Dcg(IEnumerable<int> gradesInOrder) => gradesInOrder.Take(k).Select((g, i) => (Math.Pow(2, g) - 1) / Math.Log2(i + 2)).Sum();
        var seen = new HashSet<int>();
        var got = new List<int>();
        foreach (int id in ranked)
        {
            if (got.Count == k) break;
            got.Add(seen.Add(id) && grades.TryGetValue(id, out int g) ? g : 0);
        }
        double ideal = Dcg(grades.Values.OrderByDescending(g => g));
        return ideal == 0 ? 0 : Dcg(got) / ideal;
    }

    /// <summary>F1 between the rows of a generated table and the gold rows (rows split at
    /// <paramref name="separator"/>, compared as whole token sequences, each gold row matched once).</summary>
    public static double RowF1(ReadOnlySpan<int> gold, ReadOnlySpan<int> generated, int separator)
    {
        var g = Rows(gold, separator);
        var p = Rows(generated, separator);
        if (g.Count == 0 || p.Count == 0) return 0;
        var pool = g.GroupBy(r => r).ToDictionary(x => x.Key, x => x.Count());
        int hit = 0;
        foreach (var r in p)
            if (pool.TryGetValue(r, out int c) && c > 0) { pool[r] = c - 1; hit++; }
        if (hit == 0) return 0;
        double precision = (double)hit / p.Count, recall = (double)hit / g.Count;
        return 2 * precision * recall / (precision + recall);
    }

    private static List<string> Rows(ReadOnlySpan<int> tokens, int separator)
    {
        var rows = new List<string>();
        var cur = new List<int>();
        foreach (int t in tokens)
        {
            if (t == separator) { if (cur.Count > 0) rows.Add(string.Join(',', cur)); cur.Clear(); }
            else cur.Add(t);
        }
        if (cur.Count > 0) rows.Add(string.Join(',', cur));
        return rows;
    }

    /// <summary>|first k distinct generated ∩ gold| / |gold| (the top-k overlap of the aggregation task).</summary>
    public static double TopKOverlap(ReadOnlySpan<int> gold, ReadOnlySpan<int> generated)
    {
        var firstK = new List<int>();
        foreach (int t in generated)
        {
            if (firstK.Count == gold.Length) break;
            if (!firstK.Contains(t)) firstK.Add(t);
        }
        int hit = 0;
        foreach (int g in gold) if (firstK.Contains(g)) hit++;
        return gold.IsEmpty ? 0 : (double)hit / gold.Length;
    }
}
