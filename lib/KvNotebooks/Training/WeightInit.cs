using KvNotebooks.Model;

namespace KvNotebooks.Training;

/// <summary>Seeded random initialisation for training from scratch (GPT-2 / probe recipe).</summary>
public static class WeightInit
{
    /// <summary>Every matrix ~ N(0, std²), the residual-output projections (o_proj, down_proj) scaled by
    /// 1/√(2·layers); norms 1, biases 0. Deterministic given <paramref name="seed"/>.</summary>
    public static LlamaWeights Normal(LlamaConfig c, int seed, float std = 0.02f)
    {
        c.Validate();
        var rng = new Random(seed);
        float outStd = std / MathF.Sqrt(2 * c.NumLayers);
        float[] Mat(int n, float s) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = s * Gaussian(rng); return a; }
        float[] Ones(int n) { var a = new float[n]; Array.Fill(a, 1f); return a; }
        int d = c.HiddenSize;
        var emb = Mat(c.VocabSize * d, std);
        var layers = new LayerWeights[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
            layers[l] = new LayerWeights
            {
                InputNorm = Ones(d),
                Wq = Mat(c.QDim * d, std),
                Wk = Mat(c.KvDim * d, std),
                Wv = Mat(c.KvDim * d, std),
                Bq = c.AttentionBias ? new float[c.QDim] : null,
                Bk = c.AttentionBias ? new float[c.KvDim] : null,
                Bv = c.AttentionBias ? new float[c.KvDim] : null,
                Wo = Mat(d * c.QDim, outStd),
                PostNorm = Ones(d),
                WGate = Mat(c.IntermediateSize * d, std),
                WUp = Mat(c.IntermediateSize * d, std),
                WDown = Mat(d * c.IntermediateSize, outStd),
            };
        return new LlamaWeights
        {
            Config = c,
            Embedding = emb,
            Layers = layers,
            FinalNorm = Ones(d),
            LmHead = c.TieWordEmbeddings ? emb : Mat(c.VocabSize * d, std),
        };
    }

    /// <summary>Standard normal by Box–Muller.</summary>
    public static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
