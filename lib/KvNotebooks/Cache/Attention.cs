using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;

namespace KvNotebooks.Cache;

/// <summary>
/// Causal attention of new query rows against the entries a layer's KV heads keep.
/// Row i of a block of <c>rows</c> new queries sees entries [0, Count − rows + i] of its KV head:
/// everything kept from before, then the new block up to itself.
/// <see cref="Layer(float[], int, int, int, KvHeadCache[], float, float[], int)"/> dispatches: on AVX-512,
/// pre-fill blocks of ≥ 8 rows at head size 32 go to the fused kernel (<see cref="PagedFlashAttention"/>) and
/// fewer rows (decode) to one pass per KV head for its whole GQA group (<see cref="DecodeAttention"/>).
/// The portable paths here, used otherwise, are flash-attention style too: blocks of query rows of one
/// head walk the KV head's pages; each page gives a small score block, the softmax is streamed (running
/// max and sum per row, rescaling the accumulator), and P·V is accumulated — no rows × entries matrix is
/// ever formed. Work items (head, row block) run in parallel; scratch buffers are per thread and reused.
/// </summary>
public static class Attention
{
    private const int BlockRows = 4;

    [ThreadStatic] private static float[]? _scores;
    [ThreadStatic] private static float[]? _acc;

    /// <summary>
    /// All query heads of one layer. <paramref name="q"/> and <paramref name="output"/> are
    /// [rows × numHeads·headDim]; query head h reads KV head h / (numHeads / kv.Length).
    /// The last <paramref name="rows"/> entries of every KV head must be this block's own keys.
    /// </summary>
    public static void Layer(float[] q, int rows, int numHeads, KvHeadCache[] kv, float scale, float[] output)
    {
        int width = numHeads * kv[0].HeadDim;
        Layer(q, width, rows, numHeads, kv, scale, output, width);
    }

    /// <summary>
    /// <see cref="Layer(float[], int, int, KvHeadCache[], float, float[])"/> with row strides: query row r of head h
    /// at q[r·ldq + h·headDim] (e.g. the Q columns of a fused QKV buffer, no copy), its output at
    /// output[r·ldo + h·headDim].
    /// </summary>
    public static void Layer(float[] q, int ldq, int rows, int numHeads, KvHeadCache[] kv, float scale, float[] output, int ldo)
    {
        int hd = kv[0].HeadDim, group = numHeads / kv.Length;
        if (numHeads % kv.Length != 0) throw new ArgumentException($"{numHeads} query heads do not split into {kv.Length} KV heads");
        foreach (var c in kv)
            if (c.Count < rows) throw new ArgumentException($"a KV head holds {c.Count} entries, fewer than the {rows} new rows");
        if (ldq < numHeads * hd || ldo < numHeads * hd || rows <= 0
            || q.Length < (long)(rows - 1) * ldq + numHeads * hd || output.Length < (long)(rows - 1) * ldo + numHeads * hd)
            throw new ArgumentException("attention buffers are smaller than rows × heads × headDim");
        if (rows >= FlashRows && PagedFlashAttention.Supports(hd, kv[0].PageSize))
        {
            PagedFlashAttention.Layer(q, ldq, rows, numHeads, kv, scale, output, ldo);
            return;
        }
        if (rows < FlashRows && DecodeAttention.Supports(hd, kv[0].PageSize, rows, group))
        {
            DecodeAttention.Layer(q, ldq, rows, numHeads, kv, scale, output, ldo);
            return;
        }
        if (rows >= 2 * GemmRows && Vector512.IsHardwareAccelerated && hd % 16 == 0 && kv[0].PageSize >= 8)
        {
            GemmLayer(q, ldq, rows, numHeads, kv, scale, output, ldo);
            return;
        }
        int blocks = (rows + BlockRows - 1) / BlockRows, items = numHeads * blocks;
        double work = (double)rows * kv[0].Count * numHeads * hd;
        ComputeContext.Current.For(items, work > 1 << 18,
            item => Block(q, ldq, rows, kv[item / blocks / group], scale, output, ldo, item / blocks, item % blocks * BlockRows));
    }

    /// <summary>Query rows from which the fused pre-fill kernel is used (below: the decode kernel).</summary>
    private const int FlashRows = 8;

    /// <summary>Rows [r0, r0 + 4) of query head <paramref name="h"/> against one KV head.</summary>
    private static void Block(float[] q, int ldq, int rows, KvHeadCache cache, float scale, float[] output, int ldo, int h, int r0)
    {
        int hd = cache.HeadDim, ps = cache.PageSize;
        int nr = Math.Min(BlockRows, rows - r0);
        int before = cache.Count - rows;                 // entries kept before this block of rows
        int lastVisible = before + r0 + nr - 1;          // the furthest entry any row here may see
        var scores = _scores is { } sc && sc.Length >= BlockRows * ps ? sc : _scores = new float[BlockRows * ps];
        var acc = _acc is { } ac && ac.Length >= BlockRows * hd ? ac : _acc = new float[BlockRows * hd];
        Span<float> max = stackalloc float[BlockRows];
        Span<float> sum = stackalloc float[BlockRows];
        max.Fill(float.NegativeInfinity);
        sum.Clear();
        acc.AsSpan(0, nr * hd).Clear();
        bool wide = Vector512.IsHardwareAccelerated && hd % 16 == 0;
        bool mid = !wide && Vector256.IsHardwareAccelerated && hd % 8 == 0;

        for (int p = 0; p * ps <= lastVisible; p++)
        {
            var page = cache.Page(p);
            int first = p * ps, n = Math.Min(ps, lastVisible + 1 - first);
            // Scores S[r, j] = q_r · k_j · scale; entries beyond row r's causal limit get −∞.
            for (int j = 0; j < n; j++)
            {
                int keyOffset = j * hd;
                for (int r = 0; r < nr; r++)
                {
                    int qOffset = (r0 + r) * ldq + h * hd;
                    float s = wide ? Dot512(q, qOffset, page.Keys, keyOffset, hd)
                            : mid ? Dot256(q, qOffset, page.Keys, keyOffset, hd)
                            : TensorPrimitives.Dot(q.AsSpan(qOffset, hd), page.Keys.AsSpan(keyOffset, hd));
                    scores[r * ps + j] = first + j <= before + r0 + r ? s * scale : float.NegativeInfinity;
                }
            }
            // Streaming softmax: rescale what was accumulated when the running max grows.
            for (int r = 0; r < nr; r++)
                OnlineSoftmax(scores.AsSpan(r * ps, n), ref max[r], ref sum[r], acc.AsSpan(r * hd, hd));
            // acc_r += Σ_j P[r, j] · v_j
            for (int j = 0; j < n; j++)
            {
                int valueOffset = j * hd;
                for (int r = 0; r < nr; r++)
                {
                    float w = scores[r * ps + j];
                    if (w == 0f) continue;
                    if (wide) Axpy512(w, page.Values, valueOffset, acc, r * hd, hd);
                    else TensorPrimitives.MultiplyAdd(page.Values.AsSpan(valueOffset, hd), w, acc.AsSpan(r * hd, hd), acc.AsSpan(r * hd, hd));
                }
            }
        }
        for (int r = 0; r < nr; r++)
            TensorPrimitives.Divide(acc.AsSpan(r * hd, hd), sum[r], output.AsSpan((r0 + r) * ldo + h * hd, hd));
    }

    /// <summary>
    /// One streaming-softmax step for one query row: <paramref name="scores"/> (this page's, −∞ where
    /// masked) become exp(score − running max); the running sum and the accumulated output
    /// <paramref name="acc"/> are rescaled when the max grows. A fully masked page contributes zeros.
    /// </summary>
    private static void OnlineSoftmax(Span<float> scores, ref float max, ref float sum, Span<float> acc)
    {
        float pageMax = TensorPrimitives.Max(scores);
        if (float.IsNegativeInfinity(pageMax)) { scores.Clear(); return; }
        float newMax = Math.Max(max, pageMax);
        float correction = MathF.Exp(max - newMax);
        if (correction != 1f)
        {
            sum *= correction;
            TensorPrimitives.Multiply(acc, correction, acc);
        }
        TensorPrimitives.Subtract(scores, newMax, scores);
        TensorPrimitives.Exp(scores, scores);
        sum += TensorPrimitives.Sum(scores);
        max = newMax;
    }

    private const int GemmRows = 64;
    [ThreadStatic] private static float[]? _qBlock, _sBlock, _oBlock;

    /// <summary>
    /// Pre-fill path: blocks of 64 query rows of one head. Per page, the score block S = Q·Kᵀ and the
    /// update O += P·V are small matrix products through the packed GEMM kernel (a page is stored
    /// [entries × headDim], i.e. exactly the B layout of <see cref="Gemm.MatMulNT"/>); between them the
    /// softmax is streamed per row (running max and sum, O rescaled when the max grows).
    /// </summary>
    private static void GemmLayer(float[] q, int ldq, int rows, int numHeads, KvHeadCache[] kv, float scale, float[] output, int ldo)
    {
        int group = numHeads / kv.Length, blocks = (rows + GemmRows - 1) / GemmRows, items = numHeads * blocks;
        ComputeContext.Current.For(items, true,
            item => GemmBlock(q, ldq, rows, kv[item / blocks / group], scale, output, ldo, item / blocks, item % blocks * GemmRows));
    }

    private static void GemmBlock(float[] q, int ldq, int rows, KvHeadCache cache, float scale, float[] output, int ldo, int h, int r0)
    {
        int hd = cache.HeadDim, ps = cache.PageSize;
        int nr = Math.Min(GemmRows, rows - r0);
        int before = cache.Count - rows, lastVisible = before + r0 + nr - 1;
        var qb = _qBlock is { } a && a.Length >= GemmRows * hd ? a : _qBlock = new float[GemmRows * hd];
        var sb = _sBlock is { } b && b.Length >= GemmRows * ps ? b : _sBlock = new float[GemmRows * ps];
        var ob = _oBlock is { } c && c.Length >= GemmRows * hd ? c : _oBlock = new float[GemmRows * hd];
        Span<float> max = stackalloc float[GemmRows];
        Span<float> sum = stackalloc float[GemmRows];
        max.Fill(float.NegativeInfinity);
        sum.Clear();
        ob.AsSpan(0, nr * hd).Clear();
        // This head's queries, contiguous and pre-scaled by 1/√d.
        for (int r = 0; r < nr; r++) TensorPrimitives.Multiply(q.AsSpan((r0 + r) * ldq + h * hd, hd), scale, qb.AsSpan(r * hd, hd));

        for (int p = 0; p * ps <= lastVisible; p++)
        {
            var page = cache.Page(p);
            int first = p * ps, n = Math.Min(ps, lastVisible + 1 - first);
            var s = sb.AsSpan(0, nr * n);
            Gemm.MatMulNT(qb.AsSpan(0, nr * hd), page.Keys.AsSpan(0, n * hd), s, nr, n, hd);
            for (int r = 0; r < nr; r++)
            {
                var row = s.Slice(r * n, n);
                int limit = before + r0 + r - first + 1;          // entries of this page row r may see
                if (limit <= 0) { row.Clear(); continue; }
                if (limit < n) row[limit..].Fill(float.NegativeInfinity);
                OnlineSoftmax(row, ref max[r], ref sum[r], ob.AsSpan(r * hd, hd));
            }
            Gemm.MatMulNN(s, page.Values.AsSpan(0, n * hd), ob.AsSpan(0, nr * hd), nr, hd, n, accumulate: true);
        }
        for (int r = 0; r < nr; r++)
            TensorPrimitives.Divide(ob.AsSpan(r * hd, hd), sum[r], output.AsSpan((r0 + r) * ldo + h * hd, hd));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot512(float[] a, int ao, float[] b, int bo, int n)
    {
        ref float ra = ref MemoryMarshal.GetArrayDataReference(a);
        ref float rb = ref MemoryMarshal.GetArrayDataReference(b);
        var s = Vector512<float>.Zero;
        for (int i = 0; i < n; i += 16)
            s = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref ra, (nuint)(ao + i)), Vector512.LoadUnsafe(ref rb, (nuint)(bo + i)), s);
        return Vector512.Sum(s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot256(float[] a, int ao, float[] b, int bo, int n)
    {
        ref float ra = ref MemoryMarshal.GetArrayDataReference(a);
        ref float rb = ref MemoryMarshal.GetArrayDataReference(b);
        var s = Vector256<float>.Zero;
        for (int i = 0; i < n; i += 8)
            s = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref ra, (nuint)(ao + i)), Vector256.LoadUnsafe(ref rb, (nuint)(bo + i)), s);
        return Vector256.Sum(s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy512(float w, float[] x, int xo, float[] y, int yo, int n)
    {
        ref float rx = ref MemoryMarshal.GetArrayDataReference(x);
        ref float ry = ref MemoryMarshal.GetArrayDataReference(y);
        var wv = Vector512.Create(w);
        for (int i = 0; i < n; i += 16)
            Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rx, (nuint)(xo + i)), wv, Vector512.LoadUnsafe(ref ry, (nuint)(yo + i)))
                .StoreUnsafe(ref ry, (nuint)(yo + i));
    }
}
