using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.Tasks;

public class ScoringTests
{
    [Fact]
    public void Substring_exact_match()
    {
        Assert.Equal(1.0, Scoring.SubstringExactMatch([3, 4], [1, 3, 4, 5]));
        Assert.Equal(0.0, Scoring.SubstringExactMatch([3, 4], [1, 3, 5, 4]));
        Assert.Equal(0.0, Scoring.SubstringExactMatch([], [1]));
    }

    [Fact]
    public void Recall_counts_each_gold_token_found_anywhere()
    {
        Assert.Equal(2.0 / 3, Scoring.Recall([1, 2, 3], [3, 9, 1]), 12);
        Assert.Equal(1.0, Scoring.Recall([1, 2, 3], [3, 2, 1]));
    }

    [Fact]
    public void Ndcg_matches_a_hand_computed_value()
    {
        var grades = new Dictionary<int, int> { [10] = 3, [11] = 2, [12] = 1, [13] = 0 };
        // ranked 11, 10, 99: DCG = 3/log2(2) + 7/log2(3) + 0; ideal = 7 + 3/log2(3) + 1/log2(4)
        double dcg = 3 + 7 / Math.Log2(3), ideal = 7 + 3 / Math.Log2(3) + 1 / Math.Log2(4);
        Assert.Equal(dcg / ideal, Scoring.Ndcg([11, 10, 99], grades), 12);
        Assert.Equal(1.0, Scoring.Ndcg([10, 11, 12], grades), 12);
        Assert.Equal(Scoring.Ndcg([10], grades), Scoring.Ndcg([10, 10, 10], grades), 12); // repeats gain nothing
    }

    [Fact]
    public void Row_f1_compares_whole_rows()
    {
        const int nl = -1;
        int[] gold = [1, 2, nl, 3, 4, nl, 5, 6, nl];
        Assert.Equal(1.0, Scoring.RowF1(gold, gold, nl));
        // 2 rows predicted, 1 right: P = 1/2, R = 1/3 → F1 = 0.4
        Assert.Equal(0.4, Scoring.RowF1(gold, [1, 2, nl, 3, 9, nl], nl), 12);
        Assert.Equal(0.0, Scoring.RowF1(gold, [2, 1], nl));
        // a repeated right row counts once
        Assert.Equal(2 * 0.5 * (1.0 / 3) / (0.5 + 1.0 / 3), Scoring.RowF1(gold, [1, 2, nl, 1, 2], nl), 12);
    }

    [Fact]
    public void Top_k_overlap_uses_the_first_k_distinct_tokens()
    {
        Assert.Equal(2.0 / 3, Scoring.TopKOverlap([1, 2, 3], [2, 2, 1, 7, 3]), 12);
        Assert.Equal(1.0, Scoring.TopKOverlap([1, 2, 3], [3, 1, 2]));
    }
}
