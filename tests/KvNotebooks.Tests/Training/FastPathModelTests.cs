using KvNotebooks.Kernels;
using KvNotebooks.Model;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Tests.Training;

/// <summary>The whole model at head size 32 (the fused attention and the vectorised ops): the same loss and
/// gradients as with the reference attention, and bitwise the same on 1 and 2 threads.</summary>
public class FastPathModelTests
{
    private static TrainableLlama Build(string variant)
    {
        var c = new LlamaConfig
        {
            VocabSize = 41, HiddenSize = 64, IntermediateSize = 96, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, HeadDim = 32,
            TieWordEmbeddings = true, RopeTheta = 10000.0,
        };
        var m = new TrainableLlama(TrainableLlamaTests.RandomWeights(c, 7, std: 0.2f));
        if (variant == "streaming") { m.Visibility[0][1] = KeyVisibility.Streaming(2, 9); m.Visibility[1][3] = KeyVisibility.Streaming(0, 40); }
        if (variant == "gated") { m.EnableGates(KeyVisibility.Streaming(3, 16)); m.Gates![0][0] = 0.3f; m.Gates[1][1] = 0.8f; }
        return m;
    }

    [Theory]
    [InlineData("streaming", 2)]   // long-sequence layout
    [InlineData("streaming", 8)]   // 8 sequences × 2 KV heads: per-unit (local) layout
    [InlineData("gated", 8)]
    public void FastPathMatchesReferenceAndIsThreadIndependent(string variant, int batch)
    {
        int T = 70;
        var rng = new Random(batch);
        var tokens = Enumerable.Range(0, batch * T).Select(_ => rng.Next(41)).ToArray();
        var positions = Enumerable.Range(0, batch).SelectMany(b => new[] { b * T + 20, b * T + 69 }).ToArray();
        var targets = positions.Select(p => (p * 7 + 3) % 41).ToArray();
        (double Loss, float[][] Grads, float[][]? GateGrads) Run(bool reference, int threads)
        {
            using (new ComputeContext(threads).Enter())
            {
                var m = Build(variant);
                m.UseBlockedAttention = !reference;
                double loss = m.ForwardBackward(tokens, positions, targets, 1f / batch, batch);
                return (loss, m.Parameters.Select(p => (float[])p.Grad.Clone()).ToArray(), m.GateGrads?.Select(g => (float[])g.Clone()).ToArray());
            }
        }
        var reference = Run(true, 1);
        var one = Run(false, 1);
        var two = Run(false, 2);
        Assert.Equal(reference.Loss, one.Loss, 1e-5);
        for (int i = 0; i < one.Grads.Length; i++)
        {
            Assert.Equal(one.Grads[i], two.Grads[i]);   // bitwise, whatever the thread count
            for (int j = 0; j < one.Grads[i].Length; j++)
                Assert.True(Math.Abs(one.Grads[i][j] - reference.Grads[i][j]) <= 1e-6 + 2e-3 * Math.Abs(reference.Grads[i][j]),
                    $"param {i}[{j}]: {one.Grads[i][j]} vs reference {reference.Grads[i][j]}");
        }
        Assert.Equal(one.Loss, two.Loss);
        if (one.GateGrads is not null)
            for (int l = 0; l < one.GateGrads.Length; l++)
            {
                Assert.Equal(one.GateGrads[l], two.GateGrads![l]);
                for (int g = 0; g < one.GateGrads[l].Length; g++)
                    Assert.True(Math.Abs(one.GateGrads[l][g] - reference.GateGrads![l][g]) <= 1e-5 + 2e-3 * Math.Abs(reference.GateGrads[l][g]));
            }
    }
}
