using KvNotebooks.Model;
using KvNotebooks.Torch;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;
using Xunit.Abstractions;
using static KvNotebooks.Tests.Torch.TorchTensors;
using static TorchSharp.torch;

namespace KvNotebooks.Tests.Torch;

/// <summary>
/// <see cref="TrainableLlama"/>'s loss, logits and gradients (every parameter, and dL/dz of the gated hybrid heads
/// the head-mask trainers use) against LibTorch autograd through <see cref="TorchLlama"/> in fp64, for untied, tied,
/// biased, streaming-masked and gated models; on a tiny model (head size 4: the portable attention) and at head size
/// 32 over 150 tokens (the AVX-512 flash tiles; with few loss rows, the last layer on those rows only).
/// </summary>
public class TorchGradientTests(ITestOutputHelper output)
{
    public static TheoryData<string, bool> Variants()
    {
        var d = new TheoryData<string, bool>();
        foreach (var v in new[] { "untied", "tied", "bias", "streaming", "gated", "gated-reference" })
            foreach (bool wide in new[] { false, true }) d.Add(v, wide);
        return d;
    }

    private static TrainableLlama Build(string variant, bool wide) => Training.TrainableLlamaTests.Build(variant, 11, wide
        ? new LlamaConfig { VocabSize = 40, HiddenSize = 64, IntermediateSize = 96, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, HeadDim = 32, RopeTheta = 10000.0 }
        : null, wide ? 0.15f : 0.3f);

    /// <summary>Visibility [heads × T × T] of <paramref name="masks"/>: row i sees key j iff mask.Sees(i, j).</summary>
    internal static Tensor Visibility(IReadOnlyList<KeyVisibility> masks, int T)
    {
        var v = new bool[masks.Count * T * T];
        for (int h = 0; h < masks.Count; h++)
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) v[(h * T + i) * T + j] = masks[h].Sees(i, j);
        return tensor(v, [masks.Count, T, T]);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void LossLogitsAndGradientsMatchAutograd(string variant, bool wide)
    {
        var m = Build(variant, wide);
        var c = m.Config;
        int T = wide ? 150 : 10;
        var rng = new Random(T);
        var tokens = Enumerable.Range(0, T).Select(_ => rng.Next(c.VocabSize)).ToArray();
        int[] positions = wide ? [3, 40, 64, 65, 99, 120, 140, 149] : Enumerable.Range(0, T).ToArray();   // a subset, or every row
        var targets = positions.Select(_ => rng.Next(c.VocabSize)).ToArray();

        m.ZeroGrad();
        double loss = m.ForwardBackward(tokens, positions, targets);
        var logits = m.Logits.ToArray();

        using var scope = NewDisposeScope();
        using var reference = TorchLlama.FromWeights(m.Weights, ScalarType.Float64);
        reference.RequireGradients();
        Tensor[]? gates = m.Gates?.Select(g => F64(g, g.Length).requires_grad_(true)).ToArray();
        var options = new TorchForwardOptions
        {
            Visible = variant == "streaming" ? l => Visibility(m.Visibility[l], T) : null,
            Gates = gates,
            GatedStreaming = gates is null ? null : Visibility([Training.TrainableLlamaTests.GatedStreaming], T),
        };
        var rows = reference.Logits(tokens, options).index_select(0, tensor(positions.Select(p => (long)p).ToArray()));
        var torchLoss = nn.functional.cross_entropy(rows, tensor(targets.Select(t => (long)t).ToArray()));
        torchLoss.backward();

        output.WriteLine($"{variant} {(wide ? "hd 32" : "hd 4")}: last layer on the loss rows {m.LastForwardOnLossRows}; loss {loss:F6} vs {torchLoss.item<double>():F6}");
        Assert.Equal(torchLoss.item<double>(), loss, 1e-5);
        Close("logits", logits, Doubles(rows), 2e-5);
        foreach (var p in m.Parameters)
        {
            var expected = Doubles(reference.Parameters[p.Name].grad!);
            Close(p.Name + " gradient", p.Grad, expected, 1e-4);
        }
        if (gates is not null)
            for (int l = 0; l < c.NumLayers; l++)
            {
                var expected = Doubles(gates[l].grad!);
                Assert.Contains(expected, g => Math.Abs(g) > 1e-6);
                Close($"dL/dz layer {l}", m.GateGrads![l], expected, 1e-4);
            }
        if (wide && variant is "untied" or "bias" && System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            Assert.True(m.LastForwardOnLossRows, "with AVX-512 the wide case takes the loss-rows path");
    }
}
