using KvNotebooks.Model;

namespace KvNotebooks.Tests.Inference;

/// <summary>Small random models for engine tests.</summary>
internal static class TinyModels
{
    public static LlamaConfig Config(bool bias = false, bool tied = false, bool llama3 = false, int kvHeads = 2) => new()
    {
        VocabSize = 37, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = kvHeads,
        HeadDim = 8, RopeTheta = 500, AttentionBias = bias, TieWordEmbeddings = tied,
        RopeScaling = llama3 ? new RopeScaling("llama3", 4, 1, 4, 32) : null,
    };

    /// <summary>Random weights with std 0.3 (large enough that attention is far from uniform).</summary>
    public static LlamaWeights Weights(LlamaConfig c, int seed)
    {
        var rng = new Random(seed);
        float[] R(int n, double std = 0.3) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * std * 1.7)).ToArray();
        float[] Ones(int n) => Enumerable.Range(0, n).Select(_ => 1f + (float)(rng.NextDouble() - 0.5) * 0.2f).ToArray();
        int d = c.HiddenSize;
        var emb = R(c.VocabSize * d, 1.0);
        return new LlamaWeights
        {
            Config = c,
            Embedding = emb,
            Layers = Enumerable.Range(0, c.NumLayers).Select(_ => new LayerWeights
            {
                InputNorm = Ones(d), Wq = R(c.QDim * d), Wk = R(c.KvDim * d), Wv = R(c.KvDim * d),
                Bq = c.AttentionBias ? R(c.QDim) : null, Bk = c.AttentionBias ? R(c.KvDim) : null, Bv = c.AttentionBias ? R(c.KvDim) : null,
                Wo = R(d * c.QDim), PostNorm = Ones(d),
                WGate = R(c.IntermediateSize * d), WUp = R(c.IntermediateSize * d), WDown = R(d * c.IntermediateSize),
            }).ToArray(),
            FinalNorm = Ones(d),
            LmHead = c.TieWordEmbeddings ? emb : R(c.VocabSize * d),
        };
    }

    public static int[] Tokens(int n, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
    }
}
