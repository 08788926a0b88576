using KvNotebooks.Training;

namespace KvNotebooks.HeadMasks;

/// <summary>
/// DuoAttention's gate training (mit-han-lab/duo-attention, <c>duo_attn/train.py</c>). One gate α ∈ [0, 1] per (layer,
/// KV head), initialised at 1; every head's output is α·full + (1 − α)·streaming, the streaming branch block-wise as in
/// <see cref="StreamingConfig.Training"/>; the model's weights are frozen. For each batch, the full model's final hidden
/// states h (after the last RMSNorm) are the target and
/// <code>L = (1/|R|) Σ_{r∈R} (1/d) ‖h_α(r) − h(r)‖² + w · (1/n) Σ |α|</code>
/// over the supervised rows R (the question-and-answer block for the pass-key data, as the official labels; every row
/// for plain documents), n = layers × KV heads, w = reg_weight (0.05). The gates are clamped to [0, 1] before every step
/// (as the official loop does) and updated by AdamW (lr 0.02, no decay, no clipping) on DuoAttention's schedule.
/// The exported scores are the gates; at evaluation the lowest fraction s becomes streaming (<see cref="TieBreak.Duo"/>).
/// </summary>
public sealed class DuoTrainer : MaskTrainer
{
    private readonly Parameter _alpha;
    private readonly AdamWGroup[] _groups;
    private readonly double[] _baseLr;
    private float[] _reference = [], _dHidden = [];

    public DuoTrainer(MaskTrainConfig config, string runDir) : base(config, runDir)
    {
        if (!config.IsDuo) throw new ArgumentException($"DuoTrainer needs method duo, not {config.Method}");
        var c = Weights.Config;
        _alpha = new Parameter("duo.full_attention_heads", Enumerable.Repeat(1f, c.NumLayers * c.NumKvHeads).ToArray(), ParamKind.Mask) { Group = 0 };
        _groups = [new AdamWGroup("gates", config.Lr!.Value, config.WeightDecay!.Value, config.Beta1!.Value, config.Beta2!.Value)];
        _baseLr = [config.Lr.Value];
        Optimizer = new AdamW([_alpha], _groups, LrSchedule.Constant, config.ClipNorm!.Value);
    }

    public override AdamW Optimizer { get; }
    /// <summary>The gates α [layer · KvHeads + head].</summary>
    public float[] Alpha => _alpha.Value;

    protected override (string Objective, string Reg) ColumnNames => ("distill", "l1");
    protected override float[]? GateValues() => _alpha.Value;

    protected override MaskStepRow TrainStep(int k)
    {
        var c = Weights.Config;
        int L = c.NumLayers, H = c.NumKvHeads, n = L * H, d = c.HiddenSize, B = Config.Batch;
        var a = _alpha.Value;
        for (int i = 0; i < n; i++) a[i] = Math.Clamp(a[i], 0f, 1f);
        var (tokens, rows, _, _, _) = Data.Batch(k, B);
        int N = tokens.Length;
        if (_reference.Length < N * d) { _reference = new float[N * d]; _dHidden = new float[N * d]; }

        // the full model's final hidden states, then the gated model's
        Model.DisableGates();
        Model.ForwardHidden(tokens, B).CopyTo(_reference);
        Model.EnableGates(Config.Streaming.Training);
        for (int l = 0; l < L; l++) for (int h = 0; h < H; h++) Model.Gates![l][h] = a[l * H + h];
        var (loss, distill, l1) = LossAndGradients(Model, a, tokens, B, rows, _reference, (float)Config.RegWeight!.Value, _alpha.Grad, _dHidden);
        double lr = SetLearningRates(_groups, _baseLr, k);
        double norm = Optimizer.Step();
        return new MaskStepRow(k, loss, distill, l1, 1 - a.Average(x => Math.Clamp(x, 0f, 1f)), null, null, null, lr, norm, 0);
    }

    /// <summary>
    /// DuoAttention's objective with the model's gates already set to <paramref name="alpha"/>: the mean over the supervised
    /// rows of (1/d)‖h_α − h‖² against <paramref name="reference"/> (the full model's final hidden states), plus w·mean|α|.
    /// Writes dL/dα into <paramref name="dAlpha"/> (the L1 term's derivative sign(α)/n, 0 at α = 0, as torch's abs).
    /// Returns (L, distillation, mean |α|).
    /// </summary>
    public static (double Loss, double Distill, double L1) LossAndGradients(TrainableLlama model, ReadOnlySpan<float> alpha, int[] tokens, int batch,
        int[] rows, ReadOnlySpan<float> reference, float regWeight, Span<float> dAlpha, float[] dHidden)
    {
        var c = model.Config;
        int L = c.NumLayers, H = c.NumKvHeads, n = L * H, d = c.HiddenSize, N = tokens.Length;
        var hidden = model.ForwardHidden(tokens, batch);
        var dh = dHidden.AsSpan(0, N * d);
        dh.Clear();
        double distill = 0;
        float scale = 2f / (d * rows.Length);
        foreach (int r in rows)
        {
            double rowSum = 0;
            for (int e = 0; e < d; e++)
            {
                float diff = hidden[r * d + e] - reference[r * d + e];
                rowSum += (double)diff * diff;
                dh[r * d + e] = scale * diff;
            }
            distill += rowSum / d;
        }
        distill /= rows.Length;
        model.ZeroGrad();
        model.BackwardFromHidden(dh);
        double l1 = 0;
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++)
            {
                int i = l * H + h;
                l1 += Math.Abs(alpha[i]);
                dAlpha[i] = model.GateGrads![l][h] + regWeight * MathF.Sign(alpha[i]) / n;
            }
        l1 /= n;
        return (distill + regWeight * l1, distill, l1);
    }

    /// <summary>The gates clamped to [0, 1], as the scores TSV.</summary>
    public HeadScores Scores()
    {
        var c = Weights.Config;
        var v = new double[c.NumLayers, c.NumKvHeads];
        for (int l = 0; l < c.NumLayers; l++) for (int h = 0; h < c.NumKvHeads; h++) v[l, h] = Math.Clamp(_alpha.Value[l * c.NumKvHeads + h], 0f, 1f);
        return new HeadScores(v, Path.Combine(RunDir, "masks.tsv"));
    }

    /// <summary>masks.tsv: the gates (DuoAttention's full_attention_heads.tsv).</summary>
    public override void Export(string dir) => Scores().Save(Path.Combine(dir, "masks.tsv"));

    protected override IEnumerable<(string Key, object Value)> SummaryExtras()
    {
        var a = _alpha.Value.Select(x => Math.Clamp(x, 0f, 1f)).ToArray();
        yield return ("mean_gate", Math.Round(a.Average(), 6));
        yield return ("gates_below_half", a.Count(x => x < 0.5f));
    }
}
