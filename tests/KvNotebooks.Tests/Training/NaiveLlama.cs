using KvNotebooks.Model;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Tests.Training;

/// <summary>Reference forward written with explicit loops in double, independent of Training/Ops:
/// logits [T × V] at every position. Optional per-layer per-head masks and per-KV-head gates.</summary>
internal static class NaiveLlama
{
    public static double[] Logits(LlamaWeights w, int[] tokens, KeyVisibility[][]? masks = null, float[][]? gates = null, KeyVisibility streaming = default)
    {
        var c = w.Config;
        int T = tokens.Length, d = c.HiddenSize, Hq = c.NumHeads, Hkv = c.NumKvHeads, hd = c.HeadDim, ff = c.IntermediateSize, V = c.VocabSize;
        var x = new double[T, d];
        for (int t = 0; t < T; t++) for (int i = 0; i < d; i++) x[t, i] = w.Embedding[tokens[t] * d + i];
        for (int l = 0; l < c.NumLayers; l++)
        {
            var lw = w.Layers[l];
            var n = Norm(x, lw.InputNorm, c.RmsNormEps);
            var q = Lin(n, lw.Wq, lw.Bq, Hq * hd); var k = Lin(n, lw.Wk, lw.Bk, Hkv * hd); var v = Lin(n, lw.Wv, lw.Bv, Hkv * hd);
            Rope(q, Hq, hd, c.RopeTheta); Rope(k, Hkv, hd, c.RopeTheta);
            var att = new double[T, Hq * hd];
            for (int h = 0; h < Hq; h++)
            {
                int g = h / (Hq / Hkv);
                if (gates is null) Attend(q, k, v, h, g, hd, T, masks?[l][h] ?? KeyVisibility.Full, att, 1.0);
                else
                {
                    Attend(q, k, v, h, g, hd, T, KeyVisibility.Full, att, gates[l][g]);
                    Attend(q, k, v, h, g, hd, T, streaming, att, 1.0 - gates[l][g]);
                }
            }
            var o = Lin(att, lw.Wo, null, d);
            for (int t = 0; t < T; t++) for (int i = 0; i < d; i++) x[t, i] += o[t, i];
            var n2 = Norm(x, lw.PostNorm, c.RmsNormEps);
            var gate = Lin(n2, lw.WGate, null, ff); var up = Lin(n2, lw.WUp, null, ff);
            var hmid = new double[T, ff];
            for (int t = 0; t < T; t++) for (int i = 0; i < ff; i++) hmid[t, i] = gate[t, i] / (1 + Math.Exp(-gate[t, i])) * up[t, i];
            var down = Lin(hmid, lw.WDown, null, d);
            for (int t = 0; t < T; t++) for (int i = 0; i < d; i++) x[t, i] += down[t, i];
        }
        var nf = Norm(x, w.FinalNorm, c.RmsNormEps);
        var logits = Lin(nf, w.LmHead, null, V);
        var flat = new double[T * V];
        for (int t = 0; t < T; t++) for (int i = 0; i < V; i++) flat[t * V + i] = logits[t, i];
        return flat;
    }

    private static void Attend(double[,] q, double[,] k, double[,] v, int h, int g, int hd, int T, KeyVisibility m, double[,] att, double weight)
    {
        for (int i = 0; i < T; i++)
        {
            var s = new double[T]; double max = double.NegativeInfinity;
            for (int j = 0; j <= i; j++)
            {
                bool sees = KeyVisibilityTests.BruteSees(m, i, j);
                if (!sees) { s[j] = double.NegativeInfinity; continue; }
                double dot = 0;
                for (int e = 0; e < hd; e++) dot += q[i, h * hd + e] * k[j, g * hd + e];
                s[j] = dot / Math.Sqrt(hd);
                max = Math.Max(max, s[j]);
            }
            double z = 0;
            for (int j = 0; j <= i; j++) { s[j] = Math.Exp(s[j] - max); z += s[j]; }
            for (int j = 0; j <= i; j++)
                for (int e = 0; e < hd; e++) att[i, h * hd + e] += weight * s[j] / z * v[j, g * hd + e];
        }
    }

    private static double[,] Norm(double[,] x, float[] w, double eps)
    {
        int T = x.GetLength(0), d = x.GetLength(1);
        var y = new double[T, d];
        for (int t = 0; t < T; t++)
        {
            double ss = 0; for (int i = 0; i < d; i++) ss += x[t, i] * x[t, i];
            double r = 1 / Math.Sqrt(ss / d + eps);
            for (int i = 0; i < d; i++) y[t, i] = x[t, i] * r * w[i];
        }
        return y;
    }

    /// <summary>y[t, o] = Σ_i x[t, i] W[o, i] + b[o] (W in [out × in]).</summary>
    private static double[,] Lin(double[,] x, float[] W, float[]? b, int outDim)
    {
        int T = x.GetLength(0), inDim = x.GetLength(1);
        var y = new double[T, outDim];
        for (int t = 0; t < T; t++)
            for (int o = 0; o < outDim; o++)
            {
                double s = b?[o] ?? 0;
                for (int i = 0; i < inDim; i++) s += x[t, i] * W[o * inDim + i];
                y[t, o] = s;
            }
        return y;
    }

    /// <summary>Rotate-half RoPE at positions 0…T−1, inv_freq_i = θ^(−2i/hd).</summary>
    private static void Rope(double[,] x, int heads, int hd, double theta)
    {
        int T = x.GetLength(0), half = hd / 2;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++)
                {
                    double ang = t * Math.Pow(theta, -2.0 * i / hd), c = Math.Cos(ang), s = Math.Sin(ang);
                    double a = x[t, h * hd + i], b = x[t, h * hd + i + half];
                    x[t, h * hd + i] = a * c - b * s;
                    x[t, h * hd + i + half] = b * c + a * s;
                }
    }
}
