using KvNotebooks.Analysis;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Inference;

public class AttentionProbeTests
{
    [Fact]
    public void Rows_are_the_reference_softmax_attention()
    {
        var w = LlamaWeights.Random(new LlamaConfig
        {
            VocabSize = 40, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, HeadDim = 8,
            RopeTheta = 10000, MaxPositionEmbeddings = 512,
        }, seed: 3);
        var tokens = Enumerable.Range(0, 70).Select(i => (i * 7 + 3) % 40).ToArray();
        var probe = new AttentionProbe(new LlamaModel(w), tokens);
        // Reference weights: softmax(q·k/√d) from the reference model's post-RoPE queries and keys (double precision).
        var want = new Dictionary<(int, int, int), double[]>();
        ReferenceLlama.Logits(w, tokens, (_, _, _, _) => true, (l, q, k) =>
        {
            for (int h = 0; h < 4; h++)
                foreach (int t in new[] { 0, 5, 69 })
                {
                    var s = Enumerable.Range(0, t + 1).Select(j => Enumerable.Range(0, 8).Sum(i => q[t][h * 8 + i] * k[j][h / 2 * 8 + i]) / Math.Sqrt(8)).ToArray();
                    double max = s.Max(), sum = s.Sum(z => Math.Exp(z - max));
                    want[(l, h, t)] = s.Select(z => Math.Exp(z - max) / sum).ToArray();
                }
        });
        for (int l = 0; l < 2; l++)
            for (int h = 0; h < 4; h++)
                foreach (int row in new[] { 0, 5, 69 })
                {
                    var got = probe.Row(l, h, row);
                    Assert.Equal(1.0, got.Sum(), 9);
                    for (int j = 0; j <= row; j++) Assert.Equal(want[(l, h, row)][j], got[j], 5);
                }
        // Identities: all keys hold the whole mass; keys more than 0 back hold all but the diagonal.
        var all = probe.MassOn([69], Enumerable.Range(0, 70).ToArray());
        var beyond0 = probe.FarMass([69], window: 0);
        for (int l = 0; l < 2; l++)
            for (int g = 0; g < 2; g++)
            {
                Assert.Equal(1.0, all[l, g], 9);
                double diag = (probe.Row(l, 2 * g, 69)[69] + probe.Row(l, 2 * g + 1, 69)[69]) / 2;
                Assert.Equal(1 - diag, beyond0[l, g], 9);
            }
        var far = probe.FarMass([60, 69], window: 8);
        var near = probe.MassOn([69], Enumerable.Range(62, 8).ToArray());
        // Without the sinks: what a streaming head with sink 3 and window 8 could not see.
        var farNoSink = probe.FarMass([60, 69], window: 8, sink: 3);
        var onSinks = probe.MassOn([60, 69], [0, 1, 2]);
        for (int l = 0; l < 2; l++)
            for (int g = 0; g < 2; g++)
            {
                Assert.InRange(far[l, g], 0, 1);
                Assert.InRange(near[l, g], 0, 1);
                Assert.Equal(far[l, g] - onSinks[l, g], farNoSink[l, g], 9);
            }
    }
}
