using KvNotebooks.Model;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.HeadMasks;

/// <summary>
/// PruLong's mask training (princeton-pli/PruLong, <c>prulong/training</c>), as its code does it. One log α per (layer,
/// KV head), log α ~ N(4, 0.01); each step draws u ~ U(1e-8, 1 − 1e-8) per head and z = hard-concrete(log α, u)
/// (<see cref="HardConcreteOp"/>: l = −0.1, r = 1.1, temperature 2/3), every head's output is z·full + (1 − z)·streaming
/// (block-wise streaming, <see cref="StreamingConfig.Training"/>), and
/// <code>L = CE(next token, every position) + λ1 (s − t) + λ2 (s − t)²,   s = 1 − mean(z)</code>
/// with s the sparsity of the sampled z (the code's, not the paper's expected L0), t rising linearly from start to
/// target over 80 % of the steps. λ1, λ2 start at 0 and follow gradient ascent (AdamW with maximize). AdamW groups:
/// log α (lr 1), λ (lr 1, maximize), and in masks-and-weights mode the weights (decay and no-decay); weight decay 0.1 on
/// every group but the norms, β (0.9, 0.95), global clip 1.0, cosine schedule with 10 % warmup and a 1 % floor on every
/// group. Masks only by default (weights frozen, bit-identical); <see cref="MaskTrainConfig.WeightsLr"/> &gt; 0 trains
/// them too, from masks of <see cref="MaskTrainConfig.InitMasks"/> (the paper's ablation).
/// Exported scores: the code's deterministic mask per layer (<see cref="HardConcreteOp.DeterministicMask"/>).
/// </summary>
public sealed class PruLongTrainer : MaskTrainer
{
    /// <summary>The index <see cref="Pretrainer.SeedOf"/> gets for a step's hard-concrete noise (data sequences use 0 … batch − 1).</summary>
    public const int NoiseIndex = 1 << 20;

    private readonly Parameter _logAlpha, _lambda1, _lambda2;
    private readonly AdamWGroup[] _groups;
    private readonly double[] _baseLr;
    private readonly float[] _u, _z, _dz;

    public PruLongTrainer(MaskTrainConfig config, string runDir) : base(config, runDir)
    {
        if (!config.IsPruLong) throw new ArgumentException($"PruLongTrainer needs method prulong, not {config.Method}");
        var c = Weights.Config;
        int n = c.NumLayers * c.NumKvHeads;
        _logAlpha = new Parameter("prulong.attn_mask_log_alphas", InitialLogAlpha(config, c), ParamKind.Mask) { Group = 2 };
        _lambda1 = new Parameter("prulong.sparsity_lambda_1", [0f], ParamKind.Mask) { Group = 3 };
        _lambda2 = new Parameter("prulong.sparsity_lambda_2", [0f], ParamKind.Mask) { Group = 3 };
        double wd = config.WeightDecay!.Value, b1 = config.Beta1!.Value, b2 = config.Beta2!.Value;
        double wlr = config.WeightsLr!.Value;
        _groups =
        [
            new AdamWGroup("weights_decay", wlr, wd, b1, b2),
            new AdamWGroup("weights_no_decay", wlr, 0.0, b1, b2),
            new AdamWGroup("log_alpha", config.Lr!.Value, wd, b1, b2),
            new AdamWGroup("lambda", config.LambdaLr!.Value, wd, b1, b2, Maximize: true),
        ];
        _baseLr = _groups.Select(g => g.Lr).ToArray();
        var trained = new List<Parameter> { _logAlpha, _lambda1, _lambda2 };
        if (wlr > 0)
        {
            Model.SetFrozen(_ => true, false);
            trained.AddRange(Model.Parameters);
        }
        Optimizer = new AdamW(trained, _groups, LrSchedule.Constant, config.ClipNorm!.Value);
        Model.EnableGates(config.Streaming.Training);
        _u = new float[n]; _z = new float[n]; _dz = new float[n];
    }

    public override AdamW Optimizer { get; }
    /// <summary>log α [layer · KvHeads + head].</summary>
    public float[] LogAlpha => _logAlpha.Value;
    public float Lambda1 => _lambda1.Value[0];
    public float Lambda2 => _lambda2.Value[0];
    /// <summary>The z of the last step.</summary>
    public ReadOnlySpan<float> LastZ => _z;

    /// <summary>N(init, std²) per head from the run's seed, or ±10 from <see cref="MaskTrainConfig.InitMasks"/>.</summary>
    private static float[] InitialLogAlpha(MaskTrainConfig cfg, LlamaConfig c)
    {
        int L = c.NumLayers, H = c.NumKvHeads;
        var v = new float[L * H];
        if (cfg.InitMasks is { } im)
        {
            var full = HeadScores.Load(im.Path, c).Binarize(im.Sparsity, TieBreak.PruLong);
            for (int l = 0; l < L; l++) for (int h = 0; h < H; h++) v[l * H + h] = full[l, h] ? 10f : -10f;
            return v;
        }
        var rng = new Random(Pretrainer.SeedOf(cfg.Seed, -1, NoiseIndex));
        for (int i = 0; i < v.Length; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            v[i] = (float)(cfg.InitLogAlpha!.Value + cfg.InitLogAlphaStd!.Value * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return v;
    }

    protected override (string Objective, string Reg) ColumnNames => ("lm", "lagrangian");
    protected override float[]? GateValues() => _logAlpha.Value;

    protected override MaskStepRow TrainStep(int k)
    {
        double t = Config.TargetAt(k);
        // z = hard-concrete(log α, u), u from (seed, step)
        HardConcreteOp.SampleUniform(new Random(Pretrainer.SeedOf(Config.Seed, k, NoiseIndex)), _u);
        Array.Clear(_logAlpha.Grad); Array.Clear(_lambda1.Grad); Array.Clear(_lambda2.Grad);
        var (tokens, _, positions, targets, _) = Data.Batch(k, Config.Batch);
        double l1 = _lambda1.Value[0], l2 = _lambda2.Value[0];
        var (loss, lm, s) = LossAndGradients(Model, _logAlpha.Value, _u, l1, l2, t, tokens, positions, targets, Config.Batch, _logAlpha.Grad, _z, _dz);
        double gap = s - t;
        _lambda1.Grad[0] = (float)gap;
        _lambda2.Grad[0] = (float)(gap * gap);
        double lr = SetLearningRates(_groups, _baseLr, k);
        double norm = Optimizer.Step();
        return new MaskStepRow(k, loss, lm, loss - lm, s, t, l1, l2, lr, norm, 0);
    }

    /// <summary>
    /// PruLong's objective for fixed noise u: z = hard-concrete(log α, u) set as the model's gates,
    /// L = CE(targets at positions) + λ1(s − t) + λ2(s − t)² with s = 1 − mean(z). Adds dL/dlog α to
    /// <paramref name="dLogAlpha"/> (and the weights' gradients to theirs, for unfrozen weights); z and dL/dz are
    /// left in the scratch spans. The model's gradients are zeroed first. Returns (L, CE, s). ∂L/∂λ1 = s − t and ∂L/∂λ2 = (s − t)² are the caller's.
    /// </summary>
    public static (double Loss, double Lm, double Sparsity) LossAndGradients(TrainableLlama model, ReadOnlySpan<float> logAlpha, ReadOnlySpan<float> u,
        double lambda1, double lambda2, double target, int[] tokens, int[] positions, int[] targets, int batch,
        Span<float> dLogAlpha, Span<float> z, Span<float> dz)
    {
        var c = model.Config;
        int L = c.NumLayers, H = c.NumKvHeads, n = L * H;
        if (model.Gates is null) throw new InvalidOperationException("enable the model's gates first");
        HardConcreteOp.Forward(logAlpha, u, z[..n]);
        for (int l = 0; l < L; l++) for (int h = 0; h < H; h++) model.Gates[l][h] = z[l * H + h];
        model.ZeroGrad();
        double lm = model.ForwardBackward(tokens, positions, targets, 1f, batch);
        // the Lagrangian on the sampled sparsity: ∂/∂z_i = −(λ1 + 2λ2(s − t))/n
        double zSum = 0;
        for (int i = 0; i < n; i++) zSum += z[i];
        double s = 1 - zSum / n, gap = s - target;
        float dRegDz = (float)(-(lambda1 + 2 * lambda2 * gap) / n);
        for (int l = 0; l < L; l++) for (int h = 0; h < H; h++) dz[l * H + h] = model.GateGrads![l][h] + dRegDz;
        HardConcreteOp.Backward(dz[..n], logAlpha, u, dLogAlpha);
        return (lm + lambda1 * gap + lambda2 * gap * gap, lm, s);
    }

    /// <summary>The code's deterministic mask, layer by layer (as get_masks): σ(0.8·log α/β) with each layer's
    /// round(Σ P(z = 0)) smallest entries set to 0.</summary>
    public HeadScores Scores()
    {
        var c = Weights.Config;
        int L = c.NumLayers, H = c.NumKvHeads;
        var v = new double[L, H];
        for (int l = 0; l < L; l++)
        {
            var m = HardConcreteOp.DeterministicMask(_logAlpha.Value.AsSpan(l * H, H));
            for (int h = 0; h < H; h++) v[l, h] = m[h];
        }
        return new HeadScores(v, Path.Combine(RunDir, "masks.tsv"));
    }

    /// <summary>masks.tsv (the deterministic mask), log_alpha.tsv, masks_sp{t}.tsv (0/1 at the target sparsity, PruLong's
    /// ranking: save_prulong_masks.py's export), and in masks-and-weights mode the model in model/.</summary>
    public override void Export(string dir)
    {
        var c = Weights.Config;
        var scores = Scores();
        scores.Save(Path.Combine(dir, "masks.tsv"));
        var la = new double[c.NumLayers, c.NumKvHeads];
        for (int l = 0; l < c.NumLayers; l++) for (int h = 0; h < c.NumKvHeads; h++) la[l, h] = _logAlpha.Value[l * c.NumKvHeads + h];
        new HeadScores(la).Save(Path.Combine(dir, "log_alpha.tsv"));
        double t = Config.TargetSparsity!.Value;
        HeadScores.SaveMask(Path.Combine(dir, MaskFileName(t)), scores.Binarize(t, TieBreak.PruLong));
        if (Config.WeightsLr > 0)
        {
            string model = Path.Combine(dir, "model");
            Weights.Save(model);
            string tok = Path.Combine(Config.Model, "tokenizer.json");
            if (File.Exists(tok)) AtomicFile.WriteAllText(Path.Combine(model, "tokenizer.json"), File.ReadAllText(tok));
        }
    }

    /// <summary>masks_sp0.7.tsv for t = 0.7 (the code's name).</summary>
    public static string MaskFileName(double t) => $"masks_sp{t.ToString("0.0##", System.Globalization.CultureInfo.InvariantCulture)}.tsv";

    protected override IEnumerable<(string Key, object Value)> SummaryExtras()
    {
        var c = Weights.Config;
        var scores = Scores();
        int zeros = 0;
        for (int l = 0; l < c.NumLayers; l++) for (int h = 0; h < c.NumKvHeads; h++) if (scores[l, h] == 0) zeros++;
        yield return ("target_sparsity", Config.TargetSparsity!.Value);
        yield return ("last_sampled_sparsity", Math.Round(Rows.Count > 0 ? Rows[^1].Sparsity ?? double.NaN : double.NaN, 6));
        yield return ("expected_sparsity", Math.Round(_logAlpha.Value.Average(x => (double)HardConcreteOp.ProbabilityZero(x)), 6));
        yield return ("deterministic_zeros", zeros);
        yield return ("deterministic_sparsity", Math.Round((double)zeros / (c.NumLayers * c.NumKvHeads), 6));
        yield return ("lambda1", Lambda1);
        yield return ("lambda2", Lambda2);
    }
}
