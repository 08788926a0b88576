using KvNotebooks.Cache;
using KvNotebooks.Eviction;

namespace KvNotebooks.Tests.Eviction;

/// <summary>Scores and budgets against naive double-precision references.</summary>
public class ScoringTests
{
    /// <summary>A head with gaps in its positions (as after an eviction), spread over 4-entry pages.</summary>
    private static (KvCache cache, double[][] keys, int[] positions) RandomHead(int n, int hd, int seed)
    {
        var rng = new Random(seed);
        var cache = new KvCache(1, 1, hd, pageSize: 4);
        var k = new float[n * hd]; var v = new float[n * hd];
        for (int i = 0; i < k.Length; i++) { k[i] = (float)(rng.NextDouble() * 2 - 1); v[i] = (float)rng.NextDouble(); }
        var pos = Enumerable.Range(0, n).Select(i => 2 * i + (i % 3 == 0 ? 1 : 0)).ToArray();   // increasing, with gaps
        cache[0, 0].Append(k, v, 0, hd, pos);
        var keys = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, hd).Select(d => (double)k[i * hd + d]).ToArray()).ToArray();
        return (cache, keys, pos);
    }

    /// <summary>Σ over rows and mean over heads of softmax weights, written straight from the definition.</summary>
    private static double[] ReferenceWindowSum(double[][] keys, int[] keyPos, float[] q, int qDim, int[] qPos, int firstHead, int heads,
                                               int hd, int from, int to, int end)
    {
        var output = new double[to - from];
        for (int h = firstHead; h < firstHead + heads; h++)
            for (int r = 0; r < qPos.Length; r++)
            {
                var visible = Enumerable.Range(from, end - from).Where(i => keyPos[i] <= qPos[r]).ToArray();
                if (visible.Length == 0) continue;
                var logits = visible.Select(i => Enumerable.Range(0, hd).Sum(d => (double)q[r * qDim + h * hd + d] * keys[i][d]) / Math.Sqrt(hd)).ToArray();
                double max = logits.Max(), sum = logits.Sum(x => Math.Exp(x - max));
                for (int a = 0; a < visible.Length; a++)
                    if (visible[a] < to) output[visible[a] - from] += Math.Exp(logits[a] - max) / sum / heads;
            }
        return output;
    }

    [Theory]
    [InlineData(30, 3, 20, 26, 5, 0, 2)]    // a GQA group of 2, candidates mid-cache, some rows see only part of them
    [InlineData(30, 0, 30, 30, 4, 1, 1)]    // no window: every candidate scored
    [InlineData(200, 10, 150, 190, 70, 0, 3)]  // more than one 64-row block of queries (the H2O case)
    public void WindowAttentionMatchesDefinition(int n, int from, int to, int end, int rows, int firstHead, int heads)
    {
        const int hd = 8, numHeads = 4, qDim = numHeads * hd;
        var (cache, keys, pos) = RandomHead(n, hd, seed: n + rows);
        var rng = new Random(7);
        var q = Enumerable.Range(0, rows * qDim).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        // Query positions: interleaved with the candidates' so causal masking cuts through the candidates.
        var qPos = Enumerable.Range(0, rows).Select(r => pos[Math.Max(from, end - rows + r)] - (r % 2)).ToArray();
        var expected = ReferenceWindowSum(keys, pos, q, qDim, qPos, firstHead, heads, hd, from, to, end);
        var actual = new float[to - from];
        WindowAttention.Sum(new ScoreInput
        {
            Cache = cache[0, 0], From = from, To = to, End = end, Queries = q, QueryPositions = qPos,
            QDim = qDim, FirstQueryHead = firstHead, QueryHeads = heads, Scale = 1f / MathF.Sqrt(hd),
        }, actual);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"entry {from + i}: expected {expected[i]}, got {actual[i]}");
        Assert.True(expected.Sum() > 0.1);
    }

    [Fact]
    public void AvgPoolIsZeroPaddedAndDividedByTheKernel()
    {
        var rng = new Random(3);
        foreach (int kernel in new[] { 1, 3, 5, 7 })
            for (int n = 1; n <= 12; n++)
            {
                var x = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
                var y = new float[n];
                SnapKV.AvgPool(x, kernel, y);
                for (int i = 0; i < n; i++)
                {
                    double e = Enumerable.Range(i - kernel / 2, kernel).Where(j => j >= 0 && j < n).Sum(j => (double)x[j]) / kernel;
                    Assert.Equal(e, y[i], 5);
                }
            }
        Assert.Throws<ArgumentException>(() => new SnapKV(poolKernel: 4));
    }

    [Theory]
    [InlineData(32, 1000, 4096, 64)]    // the paper's regime: pyramid over 32 layers
    [InlineData(7, 300, 1024, 16)]
    [InlineData(5, 30, 900, 8)]
    public void PyramidBudgetsAverageTheCapacityAndDecreaseLinearly(int layers, int capacity, int candidates, int window)
    {
        var py = new PyramidKV();
        var input = new BudgetInput(capacity, candidates, window, layers);
        var keep = new int[layers];
        py.LayerBudgets(input, keep);
        Assert.Equal((long)layers * (capacity - window), keep.Sum(x => (long)x));
        for (int l = 1; l < layers; l++) Assert.True(keep[l] <= keep[l - 1], $"layer {l}: {keep[l]} > {keep[l - 1]}");
        int a = capacity - window, min = a / 20, max = 2 * a - min;
        Assert.InRange(keep[0], max - 1, max);
        Assert.InRange(keep[^1], min, min + 1);
        // The paper code's integer step: same endpoints and slope, but its layers sum to more than L·a.
        var code = py.ReferenceCodeBudgets(input);
        Assert.Equal(max, code[0]);
        Assert.True(code.Sum() >= keep.Sum());
        for (int l = 0; l < layers; l++) Assert.InRange(keep[l] - code[l], -l, 1);
    }

    [Fact]
    public void PyramidBudgetsClipToTheChunkAndFallBackToEqual()
    {
        var py = new PyramidKV();
        var keep = new int[4];
        // A chunk shorter than 2·(capacity − window): SnapKV's equal budgets, as the paper's code does.
        py.LayerBudgets(new BudgetInput(60, 100, 8, 4), keep);
        Assert.Equal([52, 52, 52, 52], keep);
        // max = 2a − a/β would exceed the candidates: clipped to them, min = 2a − max.
        py.LayerBudgets(new BudgetInput(60, 110, 8, 4), keep);
        Assert.Equal(102, keep[0]);
        Assert.Equal(4 * 52, keep.Sum());
        Assert.Equal(2, keep[^1]);
    }

    [Fact]
    public void AllocationIsExactAndRespectsCaps()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 300; trial++)
        {
            int L = rng.Next(1, 12), cap = rng.Next(0, 50);
            var targets = Enumerable.Range(0, L).Select(_ => rng.NextDouble() < 0.2 ? 0 : rng.NextDouble() * 40).ToArray();
            long total = rng.Next(0, L * 50);
            var result = new int[L];
            LayerBudget.Allocate(targets, total, cap, result);
            Assert.Equal(Math.Min(total, (long)L * cap), result.Sum(x => (long)x));
            Assert.All(result, x => Assert.InRange(x, 0, cap));
            // Without clipping, every layer is within one of its exact proportional share.
            double sumT = targets.Sum();
            if (sumT > 0 && targets.All(t => total * t / sumT <= cap))
                for (int l = 0; l < L; l++) Assert.True(Math.Abs(result[l] - total * targets[l] / sumT) < 1 + 1e-9);
        }
    }

    [Fact]
    public void LmbaIsTheFewestTokensReachingTheMass()
    {
        Assert.Equal(2, ZigZagKV.Lmba([0.1f, 0.5f, 0.3f, 0.1f], 0.8));
        Assert.Equal(3, ZigZagKV.Lmba([0.1f, 0.5f, 0.3f, 0.1f], 0.81));
        Assert.Equal(1, ZigZagKV.Lmba([0.0f, 1f, 0f], 0.9));
        Assert.Equal(0, ZigZagKV.Lmba([0f, 0f], 0.9));
        Assert.Equal(4, ZigZagKV.Lmba([0.25f, 0.25f, 0.25f, 0.25f], 1.0));
    }

    [Fact]
    public void L2ScoresAreNegativeKeyNorms()
    {
        var (cache, keys, _) = RandomHead(20, 8, seed: 11);
        var scores = new float[15];
        new L2Norm(0).Score(new ScoreInput { Cache = cache[0, 0], From = 2, To = 17, End = 20 }, scores);
        for (int i = 0; i < 15; i++) Assert.Equal(-Math.Sqrt(keys[i + 2].Sum(x => x * x)), scores[i], 5);
    }
}
