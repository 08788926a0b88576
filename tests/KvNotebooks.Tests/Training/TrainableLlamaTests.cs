using KvNotebooks.Model;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;
using static KvNotebooks.Tests.Training.GradCheck;

namespace KvNotebooks.Tests.Training;

public class TrainableLlamaTests
{
    internal static LlamaConfig Tiny(bool tied = false, bool bias = false) => new()
    {
        VocabSize = 23, HiddenSize = 16, IntermediateSize = 24, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, HeadDim = 4,
        TieWordEmbeddings = tied, AttentionBias = bias, RopeTheta = 10000.0,
    };

    /// <summary>Weights large enough that every gradient is well above fp32 finite-difference noise;
    /// norms and biases randomised too so their gradients are generic.</summary>
    internal static LlamaWeights RandomWeights(LlamaConfig c, int seed, float std = 0.3f)
    {
        var w = WeightInit.Normal(c, seed, std);
        var rng = new Random(seed + 1000);
        void Jitter(float[]? a, float s) { if (a is null) return; for (int i = 0; i < a.Length; i++) a[i] += (float)(rng.NextDouble() * 2 - 1) * s; }
        Jitter(w.FinalNorm, 0.3f);
        foreach (var l in w.Layers) { Jitter(l.InputNorm, 0.3f); Jitter(l.PostNorm, 0.3f); Jitter(l.Bq, 0.3f); Jitter(l.Bk, 0.3f); Jitter(l.Bv, 0.3f); }
        return w;
    }

    private static readonly int[] Tokens = [5, 17, 3, 3, 22, 0, 9, 14, 5, 11];

    public static TheoryData<string> Variants => new() { "untied", "tied", "bias", "streaming", "gated", "gated-reference" };

    /// <summary>The streaming side of the gated variants' hybrid heads.</summary>
    internal static readonly KeyVisibility GatedStreaming = KeyVisibility.Streaming(1, 3);

    /// <summary>A model of <paramref name="variant"/> (untied, tied, bias, streaming, gated, gated-reference): on the tiny
    /// config, or on <paramref name="config"/> with the variant's tying and biases.</summary>
    internal static TrainableLlama Build(string variant, int seed = 11, LlamaConfig? config = null, float std = 0.3f)
    {
        var c = (config ?? Tiny()) with { TieWordEmbeddings = variant == "tied", AttentionBias = variant == "bias" };
        var m = new TrainableLlama(RandomWeights(c, seed, std));
        if (variant == "streaming")
        {
            m.Visibility[0][1] = KeyVisibility.Streaming(1, 3);
            m.Visibility[1][2] = KeyVisibility.Streaming(2, 2);
            m.Visibility[1][3] = KeyVisibility.Streaming(0, 4);
        }
        if (variant.EndsWith("-reference")) m.UseBlockedAttention = false;
        if (variant.StartsWith("gated"))
        {
            m.EnableGates(GatedStreaming);
            m.Gates![0][0] = 0.25f; m.Gates[0][1] = 0.9f; m.Gates[1][0] = 0.6f; m.Gates[1][1] = 0.1f;
        }
        return m;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void GradientsMatchFiniteDifferences(string variant)
    {
        var m = Build(variant);
        int[] positions = [1, 4, 6, 9];
        int[] targets = [7, 0, 19, 3];
        double L() => m.Forward(Tokens, positions, targets);
        m.ZeroGrad();
        m.ForwardBackward(Tokens, positions, targets);
        var rng = new Random(3);
        foreach (var p in m.Parameters)
        {
            // sample: 6 random entries, plus for the embedding the rows of tokens actually used
            var idx = Enumerable.Range(0, 6).Select(_ => rng.Next(p.Value.Length)).ToList();
            if (p.Kind == ParamKind.Embedding) idx.AddRange(Tokens.Take(4).Select(t => t * m.Config.HiddenSize + rng.Next(m.Config.HiddenSize)));
            var grad = (float[])p.Grad.Clone();
            Check(p.Name, p.Value, grad, L, h: 1e-2f, tol: 1e-2, indices: idx.Distinct().ToArray());
        }
        if (m.Gates is not null)
            for (int l = 0; l < m.Config.NumLayers; l++)
                Check($"gate {l}", m.Gates[l], (float[])m.GateGrads![l].Clone(), L, h: 1e-2f, tol: 1e-2);
    }

    [Fact]
    public void FrozenParametersGetNoGradientAndOthersAreUnchanged()
    {
        int[] positions = [3, 8]; int[] targets = [4, 5];
        var a = Build("untied");
        a.ForwardBackward(Tokens, positions, targets);
        var b = Build("untied");
        b.SetFrozen(n => n.Contains("layers.0.") || n.Contains("embed") || n.Contains("q_proj"), true);
        b.ForwardBackward(Tokens, positions, targets);
        for (int i = 0; i < a.Parameters.Count; i++)
        {
            var (pa, pb) = (a.Parameters[i], b.Parameters[i]);
            if (pb.Frozen) Assert.All(pb.Grad, g => Assert.Equal(0f, g));
            else Assert.Equal(pa.Grad, pb.Grad);
        }
        // only the head trains: backward stops at the final norm
        var h = Build("untied");
        h.SetFrozen(n => n != "model.norm.weight" && n != "lm_head.weight", true);
        h.ForwardBackward(Tokens, positions, targets);
        for (int i = 0; i < a.Parameters.Count; i++)
            if (h.Parameters[i].Frozen) Assert.All(h.Parameters[i].Grad, x => Assert.Equal(0f, x));
            else Assert.Equal(a.Parameters[i].Grad, h.Parameters[i].Grad);
        // masks only (PruLong): every weight frozen, gates train
        var g = Build("gated");
        g.SetFrozen(_ => true, true);
        g.ForwardBackward(Tokens, positions, targets);
        Assert.All(g.Parameters, p => Assert.All(p.Grad, x => Assert.Equal(0f, x)));
        Assert.Contains(g.GateGrads!.SelectMany(x => x), x => x != 0f);
    }

    [Theory]
    [InlineData("streaming")]
    [InlineData("gated")]
    public void BlockedAndReferenceAttentionGiveTheSameModelGradients(string variant)
    {
        var tokens = Enumerable.Range(0, 150).Select(i => (i * 13 + 5) % 23).ToArray();
        int[] positions = [10, 70, 149]; int[] targets = [1, 2, 3];
        var a = Build(variant); var b = Build(variant);
        b.UseBlockedAttention = false;
        double la = a.ForwardBackward(tokens, positions, targets), lb = b.ForwardBackward(tokens, positions, targets);
        Assert.Equal(lb, la, 1e-5);
        for (int i = 0; i < a.Parameters.Count; i++)
            for (int j = 0; j < a.Parameters[i].Grad.Length; j++)
            {
                float x = a.Parameters[i].Grad[j], y = b.Parameters[i].Grad[j];
                Assert.True(Math.Abs(x - y) <= 1e-5 + 1e-3 * Math.Abs(y), $"{a.Parameters[i].Name}[{j}]: {x} vs {y}");
            }
        if (a.GateGrads is not null)
            for (int l = 0; l < a.Config.NumLayers; l++)
                for (int g = 0; g < a.Config.NumKvHeads; g++)
                    Assert.True(Math.Abs(a.GateGrads[l][g] - b.GateGrads![l][g]) <= 1e-5 + 1e-3 * Math.Abs(b.GateGrads[l][g]));
    }

    [Theory]
    [InlineData("untied")]
    [InlineData("gated")]
    [InlineData("gated-reference")]
    public void ABatchEqualsItsSequencesOneByOne(string variant)
    {
        int[][] seqs = [Tokens, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [22, 21, 20, 0, 0, 0, 5, 5, 5, 1]];
        int[] pos = [2, 7, 9]; int[] tg = [3, 1, 4];
        var one = Build(variant);
        double mean = 0;
        foreach (var seq in seqs) mean += one.ForwardBackward(seq, pos, tg, lossScale: 1f / seqs.Length) / seqs.Length;

        var batched = Build(variant);
        int T = Tokens.Length;
        var tokens = seqs.SelectMany(x => x).ToArray();
        var positions = Enumerable.Range(0, seqs.Length).SelectMany(b => pos.Select(p => b * T + p)).ToArray();
        var targets = Enumerable.Range(0, seqs.Length).SelectMany(_ => tg).ToArray();
        double loss = batched.ForwardBackward(tokens, positions, targets, batch: seqs.Length);
        Assert.Equal(mean, loss, 1e-5);
        for (int i = 0; i < one.Parameters.Count; i++)
            for (int j = 0; j < one.Parameters[i].Grad.Length; j++)
            {
                float x = batched.Parameters[i].Grad[j], y = one.Parameters[i].Grad[j];
                Assert.True(Math.Abs(x - y) <= 1e-6 + 1e-4 * Math.Abs(y), $"{one.Parameters[i].Name}[{j}]: {x} vs {y}");
            }
        if (one.GateGrads is not null)
            for (int l = 0; l < one.Config.NumLayers; l++)
                for (int g = 0; g < one.Config.NumKvHeads; g++)
                    Assert.True(Math.Abs(one.GateGrads[l][g] - batched.GateGrads![l][g]) <= 1e-6 + 1e-4 * Math.Abs(one.GateGrads[l][g]));
        // then a single sequence again on the same (larger) buffers
        Assert.Equal(Build(variant).Forward(Tokens, pos, tg), batched.Forward(Tokens, pos, tg)); // bitwise
    }

    [Fact]
    public void TiedEmbeddingsShareOneParameter()
    {
        var m = Build("tied");
        Assert.DoesNotContain(m.Parameters, p => p.Name == "lm_head.weight");
        Assert.Same(m.Grads.Embedding, m.Grads.LmHead);
        Assert.Same(m["model.embed_tokens.weight"].Grad, m.Grads.Embedding);
    }

    [Fact]
    public void GradientsAccumulateAcrossCallsAndScale()
    {
        int[] positions = [3, 8]; int[] targets = [4, 5];
        var m = Build("untied");
        m.ForwardBackward(Tokens, positions, targets, lossScale: 0.5f);
        m.ForwardBackward(Tokens, positions, targets, lossScale: 0.5f);
        var twoHalves = m.Parameters.Select(p => (float[])p.Grad.Clone()).ToArray();
        m.ZeroGrad();
        m.ForwardBackward(Tokens, positions, targets);
        for (int i = 0; i < twoHalves.Length; i++)
            for (int j = 0; j < twoHalves[i].Length; j++)
                Assert.True(Math.Abs(twoHalves[i][j] - m.Parameters[i].Grad[j]) <= 1e-6 + 1e-5 * Math.Abs(twoHalves[i][j]));
    }

    [Fact]
    public void LongerThenShorterSequencesReuseBuffers()
    {
        var m = Build("gated");
        var longTokens = Enumerable.Range(0, 17).Select(i => i % 23).ToArray();
        m.Forward(longTokens, [16], [2]);
        double shortLoss = m.Forward(Tokens, [9], [2]);
        var fresh = Build("gated");
        Assert.Equal(fresh.Forward(Tokens, [9], [2]), shortLoss); // bitwise
    }
}

public class HiddenStateBackwardTests
{
    /// <summary>DuoAttention's distillation path: L = Σ w ⊙ hidden, gradients w.r.t. gates and weights.</summary>
    [Fact]
    public void BackwardFromHiddenMatchesFiniteDifferences()
    {
        var c = TrainableLlamaTests.Tiny();
        var m = new TrainableLlama(TrainableLlamaTests.RandomWeights(c, 21));
        m.EnableGates(KvNotebooks.Training.Ops.KeyVisibility.Streaming(1, 2), 0.5f);
        m.Gates![1][0] = 0.2f;
        int[] tokens = [3, 9, 9, 1, 20, 4, 7, 15];
        var w = GradCheck.Random(new Random(2), tokens.Length * c.HiddenSize);
        double L() => GradCheck.Dot(w, m.ForwardHidden(tokens));
        L();
        m.ZeroGrad();
        m.BackwardFromHidden(w);
        for (int l = 0; l < c.NumLayers; l++)
            GradCheck.Check($"gate {l}", m.Gates[l], (float[])m.GateGrads![l].Clone(), L, tol: 1e-2);
        foreach (var name in new[] { "model.layers.0.self_attn.k_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.norm.weight", "model.embed_tokens.weight" })
        {
            var p = m[name];
            var rng = new Random(name.Length);
            var idx = name.Contains("embed") ? tokens.Select(t => t * c.HiddenSize + rng.Next(c.HiddenSize)).Distinct().ToArray()
                                             : Enumerable.Range(0, 8).Select(_ => rng.Next(p.Value.Length)).ToArray();
            GradCheck.Check(name, p.Value, (float[])p.Grad.Clone(), L, tol: 1e-2, indices: idx);
        }
    }
}
