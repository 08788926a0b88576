using System.Numerics.Tensors;
using KvNotebooks.Cache;
using KvNotebooks.Kernels;

namespace KvNotebooks.Eviction;

/// <summary>
/// The attention a set of query rows pays to candidate KVs, the signal SnapKV, PyramidKV, ZigZagKV and H2O
/// score with. For each query head reading the stored head and each query row, the softmax runs over the
/// candidates [From, End) the row may see (key position ≤ query position) — the keys outside the
/// candidates do not enter the normaliser, as in the paper's code, which scores a chunk against itself —
/// and the weights on [From, To) are summed over rows and averaged over the query heads (GQA "+C").
/// Blocks of 64 rows × one page of keys go through the GEMM kernel twice (row max and sum, then the
/// weights), so no rows × candidates matrix is formed; scratch is per thread and reused.
/// </summary>
public static class WindowAttention
{
    private const int BlockRows = 64;
    [ThreadStatic] private static float[]? _q, _s;

    /// <summary><paramref name="output"/>[i − From] = Σ_rows mean_heads softmax weight of entry i, i ∈ [From, To).</summary>
    public static void Sum(in ScoreInput x, Span<float> output)
    {
        var cache = x.Cache;
        int hd = cache.HeadDim, ps = cache.PageSize, rows = x.QueryPositions.Length;
        if (output.Length != x.To - x.From) throw new ArgumentException($"output holds {output.Length} scores, {x.To - x.From} candidates");
        output.Clear();
        if (rows == 0 || x.End <= x.From) return;
        var qb = _q is { } a && a.Length >= BlockRows * hd ? a : _q = new float[BlockRows * hd];
        var sb = _s is { } b && b.Length >= BlockRows * ps ? b : _s = new float[BlockRows * ps];
        Span<float> max = stackalloc float[BlockRows];
        Span<float> sum = stackalloc float[BlockRows];
        Span<int> limit = stackalloc int[BlockRows];
        float weight = 1f / x.QueryHeads;
        for (int h = x.FirstQueryHead; h < x.FirstQueryHead + x.QueryHeads; h++)
            for (int r0 = 0; r0 < rows; r0 += BlockRows)
            {
                int nr = Math.Min(BlockRows, rows - r0), maxLimit = x.From;
                for (int r = 0; r < nr; r++)
                {
                    TensorPrimitives.Multiply(x.Queries.Slice((r0 + r) * x.QDim + h * hd, hd), x.Scale, qb.AsSpan(r * hd, hd));
                    limit[r] = VisibleEnd(cache, x.From, x.End, x.QueryPositions[r0 + r]);
                    maxLimit = Math.Max(maxLimit, limit[r]);
                }
                max[..nr].Fill(float.NegativeInfinity);
                sum[..nr].Clear();
                // Pass 1: each row's max and softmax denominator over the candidates it sees.
                for (int a0 = x.From; a0 < maxLimit; a0 = (a0 / ps + 1) * ps)
                {
                    int a1 = Math.Min(maxLimit, (a0 / ps + 1) * ps), n = a1 - a0;
                    var s = Scores(cache, qb, sb, nr, a0, n);
                    for (int r = 0; r < nr; r++)
                    {
                        int valid = Math.Clamp(limit[r] - a0, 0, n);
                        if (valid == 0) continue;
                        var row = s.Slice(r * n, valid);
                        float m = Math.Max(max[r], TensorPrimitives.Max(row));
                        TensorPrimitives.Subtract(row, m, row);
                        TensorPrimitives.Exp(row, row);
                        sum[r] = sum[r] * MathF.Exp(max[r] - m) + TensorPrimitives.Sum(row);
                        max[r] = m;
                    }
                }
                // Pass 2: the weights on the scored candidates, summed over rows.
                int scoredEnd = Math.Min(maxLimit, x.To);
                for (int a0 = x.From; a0 < scoredEnd; a0 = (a0 / ps + 1) * ps)
                {
                    int a1 = Math.Min(scoredEnd, (a0 / ps + 1) * ps), n = a1 - a0;
                    var s = Scores(cache, qb, sb, nr, a0, n);
                    var o = output.Slice(a0 - x.From, n);
                    for (int r = 0; r < nr; r++)
                    {
                        int valid = Math.Clamp(Math.Min(limit[r], x.To) - a0, 0, n);
                        if (valid == 0 || sum[r] == 0) continue;
                        var row = s.Slice(r * n, valid);
                        TensorPrimitives.Subtract(row, max[r], row);
                        TensorPrimitives.Exp(row, row);
                        TensorPrimitives.MultiplyAdd(row, weight / sum[r], o[..valid], o[..valid]);
                    }
                }
            }
    }

    /// <summary>S [nr × n] = scaled queries · keys [a0, a0 + n) (n within one page).</summary>
    private static Span<float> Scores(KvHeadCache cache, float[] qb, float[] sb, int nr, int a0, int n)
    {
        int hd = cache.HeadDim, ps = cache.PageSize;
        var page = cache.Page(a0 / ps);
        var s = sb.AsSpan(0, nr * n);
        Gemm.MatMulNT(qb.AsSpan(0, nr * hd), page.Keys.AsSpan(a0 % ps * hd, n * hd), s, nr, n, hd);
        return s;
    }

    /// <summary>First index in [from, end) whose position exceeds <paramref name="position"/> (positions increase).</summary>
    private static int VisibleEnd(KvHeadCache cache, int from, int end, int position)
    {
        int lo = from, hi = end;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (cache.Position(mid) <= position) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
