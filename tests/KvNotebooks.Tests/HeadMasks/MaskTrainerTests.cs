using System.Security.Cryptography;
using KvNotebooks.HeadMasks;
using KvNotebooks.Model;
using KvNotebooks.Tasks;
using KvNotebooks.Tests.Training;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Tests.HeadMasks;

/// <summary>A small model on disk for the mask trainers: the task vocabulary, 2 layers of 8 query / 4 KV heads of 4,
/// weights large enough that heads differ (so gates matter and finite differences are well above fp32 noise).</summary>
internal static class TinyMaskModel
{
    public static LlamaConfig Config(int layers = 2, int heads = 8, int kvHeads = 4) => new()
    {
        VocabSize = Vocabulary.Default.Size, HiddenSize = 32, IntermediateSize = 48, NumLayers = layers, NumHeads = heads, NumKvHeads = kvHeads,
        HeadDim = 4, TieWordEmbeddings = true, RopeTheta = 10000.0, MaxPositionEmbeddings = 1024,
    };

    public static string Folder(int seed = 3, LlamaConfig? config = null)
    {
        string dir = Directory.CreateTempSubdirectory("kvnb-masks-model").FullName;
        TrainableLlamaTests.RandomWeights(config ?? Config(), seed, std: 0.3f).Save(dir);
        return dir;
    }

    public static MaskTrainConfig Train(string method, string model, int steps, int length = 64, Dictionary<string, double>? data = null) => new MaskTrainConfig
    {
        Method = method, Model = model, Streaming = new StreamingConfig(1, 4, 2, 0.25), Steps = steps, Length = length, Threads = 1,
        CheckpointEvery = 2, Data = data ?? new() { ["natural_text"] = 1 },
    }.WithDefaults();
}

public class MaskTrainerTests
{
    private static string RunDir() => Directory.CreateTempSubdirectory("kvnb-masks-run").FullName;

    /// <summary>The same config trained twice: whole, and stopped after <paramref name="stopAfter"/> steps in another folder.</summary>
    private static (MaskTrainer Whole, string WholeDir, string StoppedDir) WholeAndStopped(MaskTrainConfig cfg, int stopAfter)
    {
        string a = RunDir(), b = RunDir();
        var whole = MaskTrainer.Create(cfg, a);
        whole.OpenRun();
        whole.Train();
        var first = MaskTrainer.Create(cfg, b);
        first.OpenRun();
        first.Train(maxSteps: stopAfter);
        return (whole, a, b);
    }

    /// <summary>log.csv's lines, every column but the seconds.</summary>
    private static string[] LogWithoutSeconds(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "log.csv")).Select(l => string.Join(',', l.Split(',').Where((_, i) => i != 10))).ToArray();

    /// <summary>The model's gates set to z = hard-concrete(log α, u) with fixed u: PruLong's whole objective (CE of the
    /// hybrid model + λ1(s − t) + λ2(s − t)²) differentiated w.r.t. log α, against central differences.</summary>
    [Fact]
    public void PruLongGradientWithRespectToLogAlphaMatchesFiniteDifferences()
    {
        var c = TinyMaskModel.Config();
        var m = new TrainableLlama(TrainableLlamaTests.RandomWeights(c, 5));
        m.SetFrozen(_ => true, true);
        m.EnableGates(KeyVisibility.Streaming(1, 4, 2));
        int n = c.NumLayers * c.NumKvHeads;
        var rng = new Random(4);
        // u and log α such that every stretched sample lies inside (0, 1): the gradient is defined everywhere nearby
        var u = Enumerable.Range(0, n).Select(_ => (float)(0.3 + 0.4 * rng.NextDouble())).ToArray();
        var logAlpha = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 1.6 - 0.8)).ToArray();
        var tokens = NaturalText.Generate(9, 48);
        var pos = Enumerable.Range(0, 47).ToArray();
        var tgt = pos.Select(p => tokens[p + 1]).ToArray();
        var (z, dz) = (new float[n], new float[n]);
        double L() => PruLongTrainer.LossAndGradients(m, logAlpha, u, 0.7, 1.3, 0.6, tokens, pos, tgt, 1, new float[n], z, dz).Loss;
        var grad = new float[n];
        PruLongTrainer.LossAndGradients(m, logAlpha, u, 0.7, 1.3, 0.6, tokens, pos, tgt, 1, grad, z, dz);
        Assert.All(z, x => Assert.InRange(x, 1e-3f, 1 - 1e-3f));
        GradCheck.Check("log α", logAlpha, grad, L, h: 1e-2f, tol: 1e-2);
    }

    /// <summary>DuoAttention's objective (distillation MSE on chosen rows + L1) w.r.t. the gates, against central differences.</summary>
    [Fact]
    public void DuoGradientWithRespectToGatesMatchesFiniteDifferences()
    {
        var c = TinyMaskModel.Config();
        var m = new TrainableLlama(TrainableLlamaTests.RandomWeights(c, 6));
        m.SetFrozen(_ => true, true);
        int n = c.NumLayers * c.NumKvHeads, d = c.HiddenSize;
        var tokens = NaturalText.Generate(2, 40);
        var rows = Enumerable.Range(20, 20).ToArray();
        var reference = m.ForwardHidden(tokens).ToArray();
        m.EnableGates(KeyVisibility.Streaming(1, 4, 2));
        var rng = new Random(8);
        var alpha = Enumerable.Range(0, n).Select(_ => (float)(0.15 + 0.7 * rng.NextDouble())).ToArray();
        var dHidden = new float[tokens.Length * d];
        double L()
        {
            for (int l = 0; l < c.NumLayers; l++) for (int h = 0; h < c.NumKvHeads; h++) m.Gates![l][h] = alpha[l * c.NumKvHeads + h];
            return DuoTrainer.LossAndGradients(m, alpha, tokens, 1, rows, reference, 0.05f, new float[n], dHidden).Loss;
        }
        L();
        var grad = new float[n];
        DuoTrainer.LossAndGradients(m, alpha, tokens, 1, rows, reference, 0.05f, grad, dHidden);
        GradCheck.Check("α", alpha, grad, L, h: 1e-2f, tol: 1e-2);
        // at α = 1 everywhere the gated model is the full model: no distillation loss, the gradient is the L1 term's and dL/dz
        Array.Fill(alpha, 1f);
        L();
        var at1 = DuoTrainer.LossAndGradients(m, alpha, tokens, 1, rows, reference, 0.05f, grad, dHidden);
        Assert.Equal(0.0, at1.Distill, 12);
        Assert.Equal(0.05, at1.Loss, 6);
    }

    /// <summary>The stretched concrete puts mass on 0, on 1 and in between, so the mean of z is not 1 − P(z = 0); what
    /// matches it is the fraction of samples with z &gt; 0.</summary>
    [Fact]
    public void HardConcreteSamplesArePositiveWithProbabilityOneMinusPZero()
    {
        const int N = 200_000;
        var rng = new Random(11);
        var u = new float[N];
        var z = new float[N];
        foreach (float logAlpha in new[] { -4f, -1.5f, 0f, 0.7f, 2f, 4f })
        {
            HardConcreteOp.SampleUniform(rng, u);
            HardConcreteOp.Forward(Enumerable.Repeat(logAlpha, N).ToArray(), u, z);
            double positive = z.Count(x => x > 0) / (double)N;
            double p = 1 - HardConcreteOp.ProbabilityZero(logAlpha);
            double sigma = Math.Sqrt(p * (1 - p) / N);
            Assert.True(Math.Abs(positive - p) < 5 * sigma + 1e-6, $"log α {logAlpha}: {positive:F5} of samples > 0, 1 − P(z = 0) = {p:F5} (σ {sigma:E2})");
            if (logAlpha is 0f or 0.7f)
                Assert.True(z.Average() < positive - 0.1, $"log α {logAlpha}: the mean {z.Average():F3} is well below P(z > 0) {positive:F3}");
        }
    }

    /// <summary>While the sampled sparsity s is below the target t, ∂L/∂λ1 = s − t &lt; 0 and ∂L/∂λ2 = (s − t)² &gt; 0, so
    /// gradient ascent moves λ1 down and λ2 up, and λ1·(s − t) grows: the penalty's slope −(λ1 + 2λ2(s − t)) on s turns
    /// positive, pushing the masks towards streaming. Here the masks start far on the full side (log α = 10, z = 1) and
    /// barely move (log α's learning rate is tiny), so s stays 0 &lt; t = 0.5 and the λ updates are the ascent alone.</summary>
    [Fact]
    public void LambdasFollowGradientAscentWhileSparsityIsBelowTarget()
    {
        var cfg = TinyMaskModel.Train("prulong", TinyMaskModel.Folder(), steps: 40) with
        {
            TargetSparsity = 0.5, StartSparsity = 0.5, InitLogAlpha = 10, InitLogAlphaStd = 0, Lr = 1e-9,
        };
        var tr = new PruLongTrainer(cfg, RunDir());
        tr.OpenRun();
        tr.Train(maxSteps: 8);
        var rows = tr.Rows;
        double previousProduct = 0;
        for (int k = 0; k < rows.Count; k++)
        {
            var r = rows[k];
            Assert.True(r.Sparsity < r.Target, $"step {k + 1}: s {r.Sparsity} is not below t {r.Target}");
            double after1 = k + 1 < rows.Count ? rows[k + 1].Lambda1!.Value : tr.Lambda1, after2 = k + 1 < rows.Count ? rows[k + 1].Lambda2!.Value : tr.Lambda2;
            Assert.True(after2 > r.Lambda2, $"step {k + 1}: s < t but λ2 went {r.Lambda2} → {after2}");
            Assert.True(after1 < r.Lambda1, $"step {k + 1}: s < t but λ1 went {r.Lambda1} → {after1}");
            double product = after1 * (r.Sparsity!.Value - r.Target!.Value);
            Assert.True(product > previousProduct, $"step {k + 1}: λ1·(s − t) = {product} did not grow from {previousProduct}");
            previousProduct = product;
        }
        // the Lagrangian's slope on s is now negative: lowering the loss means raising s
        double slope = tr.Lambda1 + 2 * tr.Lambda2 * (rows[^1].Sparsity!.Value - 0.5);
        Assert.True(slope < 0, $"∂reg/∂s = {slope}");
    }

    /// <summary>On a tiny model the Lagrangian drives the sparsity of the sampled masks, the quantity it constrains, to
    /// within one head of the target: the expected s under the final log α (estimated from 20,000 draws per head) and
    /// the average s of the last 20 steps. (The deterministic mask's zeros need not match: a stretched concrete meets a
    /// sparsity target with gates strictly between 0 and 1 too, which the random model's loss does not push apart.)</summary>
    [Theory]
    [InlineData(0.5)]
    [InlineData(0.75)]
    public void OnATinyModelTheSparsityEndsWithinOneHeadOfTheTarget(double t)
    {
        var cfg = TinyMaskModel.Train("prulong", TinyMaskModel.Folder(7), steps: 300) with { TargetSparsity = t };
        var tr = new PruLongTrainer(cfg, RunDir());
        tr.OpenRun();
        tr.Train();
        int n = tr.LogAlpha.Length;
        const int N = 20_000;
        var rng = new Random(1);
        var (u, z) = (new float[N], new float[N]);
        double meanZ = 0;
        foreach (float a in tr.LogAlpha)
        {
            HardConcreteOp.SampleUniform(rng, u);
            HardConcreteOp.Forward(Enumerable.Repeat(a, N).ToArray(), u, z);
            meanZ += z.Average() / n;
        }
        Assert.True(Math.Abs(1 - meanZ - t) <= 1.0 / n, $"t = {t}: expected sampled sparsity {1 - meanZ:F3}");
        var last = tr.Rows.TakeLast(20).Average(r => r.Sparsity!.Value);
        Assert.True(Math.Abs(last - t) <= 1.0 / n, $"t = {t}: the sampled sparsity of the last 20 steps averages {last:F3}");
    }

    [Theory]
    [InlineData("prulong")]
    [InlineData("duo")]
    [InlineData("locret")]
    public void MasksOnlyTrainingLeavesTheWeightsBitIdentical(string method)
    {
        string model = TinyMaskModel.Folder(9);
        string file = Path.Combine(model, "model.safetensors");
        var before = SHA256.HashData(File.ReadAllBytes(file));
        var data = method == "prulong" ? null : new Dictionary<string, double> { ["context_synthesis"] = 1 };
        var tr = MaskTrainer.Create(TinyMaskModel.Train(method, model, steps: 3, length: 300, data: data), RunDir());
        tr.OpenRun();
        tr.Train();
        var fresh = LlamaWeights.Load(model);
        Assert.Equal(fresh.NamedTensors().Select(t => t.Data), tr.Weights.NamedTensors().Select(t => t.Data));
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(file)));
        Assert.True(tr.Rows.Count == 3 && tr.Rows.All(r => double.IsFinite(r.Loss)));
    }

    /// <summary>A run stopped after 3 steps and resumed from its folder gives, bit for bit, the losses and masks of the
    /// uninterrupted 6-step run.</summary>
    [Theory]
    [InlineData("prulong")]
    [InlineData("duo")]
    [InlineData("locret")]
    public void AResumedRunGivesTheIdenticalLossSequence(string method)
    {
        string model = TinyMaskModel.Folder(10);
        var data = method == "prulong" ? new Dictionary<string, double> { ["natural_text"] = 1, ["task_documents"] = 1 } : new() { ["context_synthesis"] = 1 };
        var cfg = TinyMaskModel.Train(method, model, steps: 6, length: 300, data: data);
        var (whole, a, b) = WholeAndStopped(cfg, stopAfter: 3);
        var resumed = MaskTrainer.Create(cfg, b);
        resumed.OpenRun();
        Assert.Equal(3, resumed.Step);
        resumed.Train();
        Assert.Equal(6, resumed.Rows.Count);
        for (int k = 3; k < 6; k++)
        {
            var (x, y) = (whole.Rows[k], resumed.Rows[k]);
            Assert.Equal((x.Loss, x.Objective, x.Reg, x.Sparsity, x.Lambda1, x.Lambda2, x.GradNorm), (y.Loss, y.Objective, y.Reg, y.Sparsity, y.Lambda1, y.Lambda2, y.GradNorm));
        }
        string artefact = method == "locret" ? "retaining_heads.safetensors" : "masks.tsv";
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, artefact)), File.ReadAllBytes(Path.Combine(b, artefact)));
        Assert.Equal(LogWithoutSeconds(a), LogWithoutSeconds(b));   // every column but the seconds
        // a folder holding another run is refused
        var other = MaskTrainer.Create(cfg with { Seed = 2 }, b);
        Assert.Contains("different config", Assert.Throws<InvalidOperationException>(other.OpenRun).Message);
    }

    /// <summary>A kill after a save has written the logs and masks of its step but before its checkpoint (the checkpoint is
    /// written last): the run resumes from the older checkpoint, drops the newer log rows, redoes the steps and ends with
    /// the uninterrupted run's files.</summary>
    [Fact]
    public void AKillBeforeTheCheckpointIsWrittenLosesNothing()
    {
        var cfg = TinyMaskModel.Train("prulong", TinyMaskModel.Folder(10), steps: 6, length: 300) with { TargetSparsity = 0.5 };
        var (_, a, b) = WholeAndStopped(cfg, stopAfter: 3);
        byte[] atStep3 = File.ReadAllBytes(Path.Combine(b, "checkpoint.bin"));
        var second = MaskTrainer.Create(cfg, b);
        second.OpenRun();
        second.Train();
        File.WriteAllBytes(Path.Combine(b, "checkpoint.bin"), atStep3);   // the step-6 files are there, its checkpoint is not
        var resumed = MaskTrainer.Create(cfg, b);
        resumed.OpenRun();
        Assert.Equal(3, resumed.Step);
        Assert.Equal(3, resumed.Rows.Count);                                 // the log rows past the checkpoint are dropped
        resumed.Train();
        foreach (var f in new[] { "checkpoint.bin", "masks.tsv", "gates.csv" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(a, f)), File.ReadAllBytes(Path.Combine(b, f)));
        Assert.Equal(LogWithoutSeconds(a), LogWithoutSeconds(b));
    }

    [Fact]
    public void PruLongExportsTheDeterministicMaskAndItsBinarization()
    {
        var cfg = TinyMaskModel.Train("prulong", TinyMaskModel.Folder(12), steps: 4) with { TargetSparsity = 0.5 };
        string dir = RunDir();
        var tr = new PruLongTrainer(cfg, dir);
        tr.OpenRun();
        tr.Train();
        var scores = HeadScores.Load(Path.Combine(dir, "masks.tsv"), LlamaConfig.Load(Path.Combine(cfg.Model, "config.json")));
        for (int l = 0; l < 2; l++)
        {
            var m = HardConcreteOp.DeterministicMask(tr.LogAlpha.AsSpan(l * 4, 4));
            for (int h = 0; h < 4; h++) Assert.Equal((double)m[h], scores[l, h]);
        }
        var mask = KvNotebooks.Eviction.HeadMask.LoadTsv(Path.Combine(dir, "masks_sp0.5.tsv"));
        Assert.Equal(scores.Binarize(0.5, TieBreak.PruLong), mask);
        Assert.Equal(4, mask.Cast<bool>().Count(f => !f));
        Assert.True(File.Exists(Path.Combine(dir, "gates.csv")) && File.Exists(Path.Combine(dir, "summary.json")));
    }

    [Fact]
    public void MasksAndWeightsModeStartsFromBinarizedMasksAndTrainsTheWeights()
    {
        string model = TinyMaskModel.Folder(13);
        string masks = Path.Combine(RunDir(), "m.tsv");
        new HeadScores(new double[,] { { 0.9, 0.1, 0.8, 0.2 }, { 0.3, 0.7, 0.6, 0.4 } }).Save(masks);
        var cfg = TinyMaskModel.Train("prulong", model, steps: 2) with
        {
            WeightsLr = 1e-3, TargetSparsity = 0.5, StartSparsity = 0.5, InitMasks = new InitMasks { Path = masks, Sparsity = 0.5 },
        };
        var tr = new PruLongTrainer(cfg, RunDir());
        Assert.Equal([10f, -10f, 10f, -10f, -10f, 10f, 10f, -10f], tr.LogAlpha);
        tr.OpenRun();
        tr.Train();
        var fresh = LlamaWeights.Load(model);
        Assert.NotEqual(fresh.Layers[0].Wq, tr.Weights.Layers[0].Wq);
        Assert.True(File.Exists(Path.Combine(tr.RunDir, "model", "model.safetensors")));
        Assert.Equal(tr.Weights.Layers[1].WDown, LlamaWeights.Load(Path.Combine(tr.RunDir, "model")).Layers[1].WDown);
    }
}
