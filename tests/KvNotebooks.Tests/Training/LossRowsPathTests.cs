using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;
using KvNotebooks.Model;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Tests.Training;

/// <summary>
/// <see cref="TrainableLlama.LastLayerOnLossRows"/>: the last layer on the loss rows only must give the loss,
/// the logits and every gradient of the full pass bit for bit (the shipped model's training depends on it),
/// and so must its parts: attention on active row blocks, RMSNorm and Linear weight gradients over a subset of rows.
/// </summary>
public class LossRowsPathTests
{
    private static LlamaConfig Config(int layers) => new()
    {
        VocabSize = 53, HiddenSize = 64, IntermediateSize = 96, NumLayers = layers, NumHeads = 4, NumKvHeads = 2, HeadDim = 32,
        TieWordEmbeddings = true, RopeTheta = 10000.0,
    };

    /// <summary>(batch, T, loss positions per sequence as offsets from the start; negative = from the end).</summary>
    public static TheoryData<string, int, int, int[]> Cases() => new()
    {
        { "answers at the end, local layout", 8, 128, [-4, -3, -2, -1] },
        { "one loss row per sequence (P < 8)", 4, 96, [-1] },
        { "odd count across blocks, long layout", 1, 700, [0, 5, 63, 64, 130, 131, 400, 641, 699] },
        { "many rows across k-blocks", 2, 600, Enumerable.Range(0, 150).Select(i => 2 * i + 1).ToArray() },
        { "streaming heads", 2, 300, [10, 200, -2, -1] },
        { "frozen lower layers", 4, 160, [3, -1] },
        { "one layer", 4, 128, [-9, -1] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesTheFullPassBitForBit(string variant, int batch, int T, int[] offsets)
    {
        if (!FlashAttention.Supports(32)) return;   // the path needs the AVX-512 attention; elsewhere Forward runs the full pass
        var rng = new Random(batch * 1000 + T);
        var tokens = Enumerable.Range(0, batch * T).Select(_ => rng.Next(53)).ToArray();
        var positions = Enumerable.Range(0, batch).SelectMany(b => offsets.Select(o => b * T + (o < 0 ? T + o : o))).ToArray();
        var targets = positions.Select(p => (p * 7 + 3) % 53).ToArray();
        (double Loss, float[] Logits, float[][] Grads) Run(bool sparse)
        {
            var m = new TrainableLlama(TrainableLlamaTests.RandomWeights(Config(variant == "one layer" ? 1 : 2), 11, std: 0.2f));
            m.LastLayerOnLossRows = sparse;
            if (variant == "streaming heads") { m.Visibility[1][0] = KeyVisibility.Streaming(4, 64); m.Visibility[1][3] = KeyVisibility.Streaming(0, 100); }
            if (variant == "frozen lower layers") m.SetFrozen(n => n.StartsWith("model.layers.0.") || n.Contains("embed") || n.Contains("q_proj"), true);
            double loss = m.ForwardBackward(tokens, positions, targets, 0.5f, batch);
            Assert.Equal(sparse, m.LastForwardOnLossRows);
            var logits = m.Logits.ToArray();
            m.ForwardBackward(tokens, positions, targets, 0.25f, batch);   // gradients accumulate the same way too
            return (loss, logits, m.Parameters.Select(p => (float[])p.Grad.Clone()).ToArray());
        }
        var full = Run(false);
        var sparse = Run(true);
        Assert.Equal(full.Loss, sparse.Loss);
        Assert.Equal(full.Logits, sparse.Logits);
        for (int i = 0; i < full.Grads.Length; i++) Assert.Equal(full.Grads[i], sparse.Grads[i]);
        Assert.Contains(full.Grads, g => g.Any(x => x != 0));
    }

    [Fact]
    public void FallsBackToTheFullPassWhenPositionsDoNotIncrease()
    {
        var m = new TrainableLlama(TrainableLlamaTests.RandomWeights(Config(2), 3, std: 0.2f));
        var tokens = Enumerable.Range(0, 128).Select(i => i % 53).ToArray();
        int[] positions = [100, 20, 100];
        double loss = m.ForwardBackward(tokens, positions, [1, 2, 1]);
        Assert.True(double.IsFinite(loss));
        Assert.False(m.LastForwardOnLossRows);
        // after a full-pass forward the hidden-state backward is allowed; after a loss-rows forward it must refuse
        m.BackwardFromHidden(new float[128 * 64]);
        if (!FlashAttention.Supports(32)) return;
        m.Forward(tokens, [20, 100], [2, 1]);
        Assert.Throws<InvalidOperationException>(() => m.BackwardFromHidden(new float[128 * 64]));
    }

    [Theory]
    [InlineData(1, 300, 1)]
    [InlineData(1, 300, 2)]
    [InlineData(16, 70, 2)]    // local layout
    public void AttentionOnActiveBlocksMatchesTheFullAttention(int S, int T, int threads)
    {
        if (!FlashAttention.Supports(32)) return;
        int Hq = 4, Hkv = 2, hd = 32, per = FlashAttention.RowBlocks(T);
        KeyVisibility[] masks = [KeyVisibility.Full, KeyVisibility.Streaming(3, 40), KeyVisibility.Full, KeyVisibility.Streaming(0, 70)];
        var rng = new Random(S + T);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var q = R(S * T * Hq * hd); var k = R(S * T * Hkv * hd); var v = R(S * T * Hkv * hd);
        var active = new bool[S * per];
        var dO = new float[q.Length];
        for (int b = 0; b < S; b++)
            foreach (int t in new[] { T - 1, T / 3 })
            {
                active[b * per + t / 64] = true;
                for (int e = 0; e < Hq * hd; e++) dO[((b * T + t) * Hq) * hd + e] = (float)(rng.NextDouble() - 0.5);
            }
        using (new ComputeContext(threads).Enter())
        {
            var (o1, l1, dq1, dk1, dv1) = (new float[q.Length], new float[S * Hq * T], new float[q.Length], new float[k.Length], new float[v.Length]);
            FlashAttention.Forward(q, k, v, o1, l1, S, T, Hq, Hkv, masks);
            FlashAttention.Backward(dO, q, k, v, o1, l1, dq1, dk1, dv1, S, T, Hq, Hkv, masks, accumulate: false);
            var (o2, l2, dq2, dk2, dv2) = (new float[q.Length], new float[S * Hq * T], new float[q.Length], new float[k.Length], new float[v.Length]);
            FlashAttention.Forward(q, k, v, o2, l2, S, T, Hq, Hkv, masks, active);
            FlashAttention.Backward(dO, q, k, v, o2, l2, dq2, dk2, dv2, S, T, Hq, Hkv, masks, accumulate: false, active);
            for (int r = 0; r < S * T; r++)
            {
                if (!active[r / T * per + r % T / 64]) { Assert.All(o2.AsSpan(r * Hq * hd, Hq * hd).ToArray(), x => Assert.Equal(0f, x)); continue; }
                Assert.Equal(o1.AsSpan(r * Hq * hd, Hq * hd).ToArray(), o2.AsSpan(r * Hq * hd, Hq * hd).ToArray());
            }
            Assert.Equal(dq1, dq2);
            Assert.Equal(dk1, dk2);
            Assert.Equal(dv1, dv2);
            Assert.Contains(dk2, x => x != 0);
        }
    }

    [Fact]
    public void RowSubsetWeightGradientsMatchTheFullBatch()
    {
        int rows = 700, inDim = 64, outDim = 48;
        var rng = new Random(5);
        int[] keep = Enumerable.Range(0, rows).Where(r => r % 7 == 3 || r is 0 or 127 or 128 or 699).ToArray();
        var x = Enumerable.Range(0, rows * inDim).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var dy = new float[rows * outDim];
        foreach (int r in keep) for (int j = 0; j < outDim; j++) dy[r * outDim + j] = (float)(rng.NextDouble() - 0.5);
        float[] Pack(float[] a, int w) => keep.SelectMany(r => a.AsSpan(r * w, w).ToArray()).ToArray();

        var dwFull = Enumerable.Range(0, outDim * inDim).Select(i => i * 1e-3f).ToArray();
        var dbFull = new float[outDim];
        var dwRows = (float[])dwFull.Clone(); var dbRows = new float[outDim];
        LinearOp.Backward(dy, x, new float[outDim * inDim], default, dwFull, dbFull, rows, inDim, outDim);
        LinearOp.WeightGradRows(Pack(dy, outDim), Pack(x, inDim), dwRows, dbRows, keep, inDim, outDim);
        Assert.Equal(dwFull, dwRows);
        Assert.Equal(dbFull, dbRows);

        // RMSNorm over the same rows: dx of the kept rows and dw, against the full batch
        int d = 64;
        var xn = Enumerable.Range(0, rows * d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var w = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() + 0.5)).ToArray();
        var rstd = Enumerable.Range(0, rows).Select(_ => (float)(rng.NextDouble() + 0.5)).ToArray();
        var dyn = new float[rows * d];
        foreach (int r in keep) for (int j = 0; j < d; j++) dyn[r * d + j] = (float)(rng.NextDouble() - 0.5);
        var dxFull = new float[rows * d]; var dwnFull = new float[d];
        RmsNormOp.Backward(dyn, xn, w, rstd, dxFull, dwnFull, rows, d);
        var dxRows = new float[keep.Length * d]; var dwnRows = new float[d];
        RmsNormOp.BackwardRows(Pack(dyn, d), Pack(xn, d), w, keep.Select(r => rstd[r]).ToArray(), dxRows, dwnRows, keep, rows, d);
        Assert.Equal(Pack(dxFull, d), dxRows);
        Assert.Equal(dwnFull, dwnRows);
        Assert.Throws<ArgumentException>(() => RmsNormOp.BackwardRows(Pack(dyn, d), Pack(xn, d), w, rstd, dxRows, dwnRows, keep.Reverse().ToArray(), rows, d));
    }
}
