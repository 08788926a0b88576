using KvNotebooks.HeadMasks;
using KvNotebooks.Model;
using KvNotebooks.Tests.Training;
using KvNotebooks.Training;

namespace KvNotebooks.Tests.HeadMasks;

public class RetainingHeadsTests
{
    /// <summary>score = W2 · silu(W1 · [q; k; v]) written out in double.</summary>
    private static double[] Naive(RetainingHeads r, int layer, float[] q, float[] k, float[] v, int rows)
    {
        int hid = r.HiddenSize, H = r.NumKvHeads;
        var outp = new double[rows * H];
        for (int i = 0; i < rows; i++)
        {
            var act = new double[hid];
            for (int u = 0; u < hid; u++)
            {
                double s = 0;
                for (int e = 0; e < r.QDim; e++) s += (double)r.W1Q(layer)[u * r.QDim + e] * q[i * r.QDim + e];
                for (int e = 0; e < r.KvDim; e++) s += (double)r.W1K(layer)[u * r.KvDim + e] * k[i * r.KvDim + e] + (double)r.W1V(layer)[u * r.KvDim + e] * v[i * r.KvDim + e];
                act[u] = s / (1 + Math.Exp(-s));
            }
            for (int g = 0; g < H; g++)
            {
                double s = 0;
                for (int u = 0; u < hid; u++) s += (double)r.W2(layer)[g * hid + u] * act[u];
                outp[i * H + g] = s;
            }
        }
        return outp;
    }

    [Fact]
    public void ScoreMatchesTheFormulaAndFilesRoundTrip()
    {
        var c = TinyMaskModel.Config();
        var heads = RetainingHeads.Random(c, 24, seed: 3, std: 0.3f);
        var rng = new Random(1);
        foreach (int rows in new[] { 1, 7, 70 })
        {
            var q = GradCheck.Random(rng, rows * c.QDim); var k = GradCheck.Random(rng, rows * c.KvDim); var v = GradCheck.Random(rng, rows * c.KvDim);
            var scores = new float[rows * c.NumKvHeads];
            heads.Score(1, q, k, v, rows, scores);
            var want = Naive(heads, 1, q, k, v, rows);
            for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(scores[i] - want[i]) < 1e-4 * (1 + Math.Abs(want[i])), $"rows {rows}, [{i}]: {scores[i]} vs {want[i]}");
        }
        string path = Path.Combine(Directory.CreateTempSubdirectory("kvnb-heads").FullName, "heads.safetensors");
        heads.Save(path);
        var back = RetainingHeads.Load(path, c);
        for (int l = 0; l < c.NumLayers; l++)
        {
            Assert.Equal(heads.W1Q(l), back.W1Q(l)); Assert.Equal(heads.W1K(l), back.W1K(l));
            Assert.Equal(heads.W1V(l), back.W1V(l)); Assert.Equal(heads.W2(l), back.W2(l));
        }
        // fc1 is stored as Locret stores it: one [hidden × (QDim + 2·KvDim)] matrix, columns q | k | v
        var f = SafetensorsFile.Open(path);
        Assert.Equal([24, c.QDim + 2 * c.KvDim], f.Tensors["model.layers.0.self_attn.fc1.weight"].Shape);
        Assert.Equal([c.NumKvHeads, 24], f.Tensors["model.layers.1.self_attn.fc2.weight"].Shape);
        Assert.Equal(heads.W1K(0)[1], f.ReadFloat32("model.layers.0.self_attn.fc1.weight")[c.QDim + 1]);
        var e = Assert.Throws<InvalidDataException>(() => RetainingHeads.Load(path, c with { NumLayers = 3 }));
        Assert.Contains(path, e.Message);
        Assert.Throws<ArgumentException>(() => heads.Score(0, new float[c.QDim], new float[c.KvDim], new float[c.KvDim], 2, new float[8]));
    }

    /// <summary>The causal-importance target is the largest attention logit a context key receives from a later query of its group.</summary>
    [Fact]
    public void TargetsAreTheLargestLogitFromTheQueriesAfterTheContext()
    {
        string model = TinyMaskModel.Folder(4);
        var cfg = TinyMaskModel.Train("locret", model, steps: 2, length: 300, data: new() { ["context_synthesis"] = 1 });
        var tr = new RetainingHeadTrainer(cfg, Directory.CreateTempSubdirectory("kvnb-locret").FullName);
        var seq = tr.Data.Get(0, 0);
        tr.Model.ForwardHidden(seq.Tokens);
        var c = tr.Weights.Config;
        int C = seq.QaStart, T = seq.Tokens.Length;
        var q = tr.Model.LayerQueries(1); var k = tr.Model.LayerKeys(1);
        var target = new float[C * c.NumKvHeads];
        tr.CausalImportance(q, k, C, T, target);
        var rng = new Random(2);
        for (int trial = 0; trial < 20; trial++)
        {
            int j = rng.Next(C), g = rng.Next(c.NumKvHeads);
            double best = double.NegativeInfinity;
            for (int i = C; i < T; i++)
                for (int h = g * 2; h < g * 2 + 2; h++)
                {
                    double s = 0;
                    for (int e = 0; e < c.HeadDim; e++) s += (double)q[(i * c.NumHeads + h) * c.HeadDim + e] * k[(j * c.NumKvHeads + g) * c.HeadDim + e];
                    best = Math.Max(best, s / Math.Sqrt(c.HeadDim));
                }
            Assert.Equal(best, target[j * c.NumKvHeads + g], 1e-4);
        }
    }

    /// <summary>Locret's loss (smooth L1 + smoothness) differentiated w.r.t. every block of the heads, against central differences.</summary>
    [Fact]
    public void TrainingGradientsMatchFiniteDifferences()
    {
        string model = TinyMaskModel.Folder(5);
        var cfg = TinyMaskModel.Train("locret", model, steps: 2, length: 200, data: new() { ["context_synthesis"] = 1 }) with { HiddenSize = 8, SmoothWeight = 0.3 };
        var tr = new RetainingHeadTrainer(cfg, Directory.CreateTempSubdirectory("kvnb-locret").FullName);
        // larger heads, so that predictions move across the smooth-L1 kink and the smoothness term matters
        var rng = new Random(6);
        foreach (var p in tr.Optimizer.Parameters) for (int i = 0; i < p.Value.Length; i++) p.Value[i] = (float)(rng.NextDouble() * 2 - 1) * 0.4f;
        var seq = tr.Data.Get(1, 0);
        double L()
        {
            var (h, s, _) = tr.Sequence(seq, 1.0);
            return h + cfg.SmoothWeight!.Value * s;
        }
        foreach (var p in tr.Optimizer.Parameters) Array.Clear(p.Grad);
        L();
        foreach (var p in tr.Optimizer.Parameters.Where((_, i) => i % 3 == 0))
        {
            var grad = (float[])p.Grad.Clone();
            var idx = Enumerable.Range(0, 12).Select(_ => rng.Next(p.Value.Length)).Distinct().ToArray();
            GradCheck.Check(p.Name, p.Value, grad, () => { foreach (var q in tr.Optimizer.Parameters) Array.Clear(q.Grad); return L(); },
                h: 1e-3f, tol: 2e-2, indices: idx);
        }
    }
}
