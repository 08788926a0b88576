using KvNotebooks.Model;

namespace KvNotebooks.Tests.Inference;

/// <summary>
/// A deliberately naive Llama forward over a whole sequence in double precision, with an explicit
/// attention mask: visible(layer, kvHead, queryPos, keyPos). Independent of the engine's kernels,
/// cache and RoPE code, so it can catch their mistakes.
/// </summary>
internal static class ReferenceLlama
{
    public delegate bool Visible(int layer, int kvHead, int query, int key);
    /// <summary>Visibility per query head (a cache replicated per query head keeps a set per query head).</summary>
    public delegate bool VisibleQ(int layer, int queryHead, int query, int key);

    /// <summary>Logits [T][V] for every position of <paramref name="tokens"/>. <paramref name="layerQk"/>,
    /// when given, sees each layer's post-RoPE queries [T][QDim] and keys [T][KvDim].</summary>
    public static double[][] Logits(LlamaWeights w, int[] tokens, Visible visible, Action<int, double[][], double[][]>? layerQk = null) =>
        LogitsPerQueryHead(w, tokens, (l, h, q, k) => visible(l, h / w.Config.GroupSize, q, k), layerQk);

    /// <summary>As above, with visibility decided per query head.</summary>
    public static double[][] LogitsPerQueryHead(LlamaWeights w, int[] tokens, VisibleQ visible, Action<int, double[][], double[][]>? layerQk = null)
    {
        var c = w.Config;
        int T = tokens.Length, d = c.HiddenSize, hd = c.HeadDim, H = c.NumHeads, G = c.GroupSize;
        var x = new double[T][];
        for (int t = 0; t < T; t++) x[t] = Enumerable.Range(0, d).Select(i => (double)w.Embedding[tokens[t] * d + i]).ToArray();
        for (int l = 0; l < c.NumLayers; l++)
        {
            var lw = w.Layers[l];
            var q = new double[T][]; var k = new double[T][]; var v = new double[T][];
            for (int t = 0; t < T; t++)
            {
                var xn = Norm(x[t], lw.InputNorm, c.RmsNormEps);
                q[t] = Rope(Linear(xn, lw.Wq, lw.Bq, c.QDim), t, c);
                k[t] = Rope(Linear(xn, lw.Wk, lw.Bk, c.KvDim), t, c);
                v[t] = Linear(xn, lw.Wv, lw.Bv, c.KvDim);
            }
            layerQk?.Invoke(l, q, k);
            for (int t = 0; t < T; t++)
            {
                var attn = new double[c.QDim];
                for (int h = 0; h < H; h++)
                {
                    int g = h / G;
                    var keys = Enumerable.Range(0, t + 1).Where(j => visible(l, h, t, j)).ToArray();
                    var s = keys.Select(j => Enumerable.Range(0, hd).Sum(i => q[t][h * hd + i] * k[j][g * hd + i]) / Math.Sqrt(hd)).ToArray();
                    double max = s.Max();
                    var p = s.Select(z => Math.Exp(z - max)).ToArray();
                    double sum = p.Sum();
                    for (int a = 0; a < keys.Length; a++)
                        for (int i = 0; i < hd; i++) attn[h * hd + i] += p[a] / sum * v[keys[a]][g * hd + i];
                }
                var o = Linear(attn, lw.Wo, null, d);
                for (int i = 0; i < d; i++) x[t][i] += o[i];
                var xn2 = Norm(x[t], lw.PostNorm, c.RmsNormEps);
                var gate = Linear(xn2, lw.WGate, null, c.IntermediateSize);
                var up = Linear(xn2, lw.WUp, null, c.IntermediateSize);
                var hmid = gate.Select((gv, i) => gv / (1 + Math.Exp(-gv)) * up[i]).ToArray();
                var down = Linear(hmid, lw.WDown, null, d);
                for (int i = 0; i < d; i++) x[t][i] += down[i];
            }
        }
        return x.Select(xt => Linear(Norm(xt, w.FinalNorm, c.RmsNormEps), w.LmHead, null, c.VocabSize)).ToArray();
    }

    private static double[] Norm(double[] x, float[] weight, double eps)
    {
        double ms = x.Sum(z => z * z) / x.Length;
        double inv = 1 / Math.Sqrt(ms + eps);
        return x.Select((z, i) => z * inv * weight[i]).ToArray();
    }

    private static double[] Linear(double[] x, float[] w, float[]? bias, int outDim)
    {
        int inDim = x.Length;
        var y = new double[outDim];
        for (int o = 0; o < outDim; o++)
        {
            double s = bias?[o] ?? 0;
            for (int i = 0; i < inDim; i++) s += w[o * inDim + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    /// <summary>Rotate-half RoPE at position <paramref name="pos"/> for every head packed in <paramref name="x"/>.</summary>
    private static double[] Rope(double[] x, int pos, LlamaConfig c)
    {
        int hd = c.HeadDim, half = hd / 2;
        var y = (double[])x.Clone();
        for (int h = 0; h < x.Length / hd; h++)
            for (int i = 0; i < half; i++)
            {
                double f = InvFreq(i, c);
                double a = x[h * hd + i], b = x[h * hd + i + half];
                y[h * hd + i] = a * Math.Cos(pos * f) - b * Math.Sin(pos * f);
                y[h * hd + i + half] = b * Math.Cos(pos * f) + a * Math.Sin(pos * f);
            }
        return y;
    }

    private static double InvFreq(int i, LlamaConfig c)
    {
        double f = Math.Pow(c.RopeTheta, -2.0 * i / c.HeadDim);
        if (c.RopeScaling is not { } s) return f;
        double wavelen = 2 * Math.PI / f;
        if (wavelen < s.OriginalMaxPositionEmbeddings / s.HighFreqFactor) return f;
        if (wavelen > s.OriginalMaxPositionEmbeddings / s.LowFreqFactor) return f / s.Factor;
        double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        return (1 - smooth) * f / s.Factor + smooth * f;
    }
}
