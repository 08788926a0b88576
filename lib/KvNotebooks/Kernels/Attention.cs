using System.Numerics.Tensors;
using KvNotebooks.Cache;

namespace KvNotebooks.Kernels;

/// <summary>
/// Causal attention of new query rows against the entries a layer's KV heads keep.
/// Row i of a block of <c>rows</c> new queries sees entries [0, Count − rows + i] of its KV head:
/// everything kept from before, then the new block up to itself. Softmax is streamed; no
/// rows × entries matrix is formed.
/// </summary>
public static class Attention
{
    /// <summary>
    /// All query heads of one layer. <paramref name="q"/> and <paramref name="output"/> are
    /// [rows × numHeads·headDim]; query head h reads KV head h / (numHeads / kv.Length).
    /// The last <paramref name="rows"/> entries of every KV head must be this block's own keys.
    /// </summary>
    public static void Layer(float[] q, int rows, int numHeads, KvHeadCache[] kv, float scale, float[] output)
    {
        int hd = kv[0].HeadDim, group = numHeads / kv.Length, stride = numHeads * hd;
        for (int h = 0; h < numHeads; h++)
        {
            var cache = kv[h / group];
            if (cache.Count < rows) throw new ArgumentException($"KV head {h / group} holds {cache.Count} entries, fewer than the {rows} new rows");
            var scores = new float[cache.Count];
            for (int i = 0; i < rows; i++)
            {
                var qi = q.AsSpan(i * stride + h * hd, hd);
                int visible = cache.Count - rows + i + 1;
                for (int j = 0; j < visible; j++) scores[j] = TensorPrimitives.Dot(qi, cache.Key(j)) * scale;
                var s = scores.AsSpan(0, visible);
                TensorPrimitives.SoftMax(s, s);
                var oi = output.AsSpan(i * stride + h * hd, hd);
                oi.Clear();
                for (int j = 0; j < visible; j++) TensorPrimitives.MultiplyAdd(cache.Value(j), s[j], oi, oi);
            }
        }
    }
}
