using System.Numerics.Tensors;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.HeadMasks;

/// <summary>
/// Trains Locret's retaining heads (<see cref="RetainingHeads"/>) with the model frozen, as Locret's <c>train.py</c> and
/// <c>data_gen.py</c> do. For a sequence whose context (rows 0 … C − 1) is followed by questions and answers (rows C …
/// T − 1, the "response"), the target of context token j on KV head g is its causal importance: the largest
/// attention logit q_i·k_j/√hd it receives from a later query i ≥ C of any query head of g's group (Locret's code takes
/// the pre-softmax scores, the maximum over the GQA group and over the response's queries). The heads read token j's
/// own post-RoPE q, k and v; per layer the loss is the smooth-L1 (Huber, β = 1) distance of the predicted scores to
/// the targets, averaged over tokens, heads and layers, plus smooth_weight (0.0025) times the sum over layers of the
/// mean squared difference between neighbouring tokens' predictions. AdamW (lr 5e-4, β (0.9, 0.95), decay 0.01), every
/// gradient value clipped to ±0.5, linear warmup over two thirds of the steps then linear decay to 0.
/// </summary>
public sealed class RetainingHeadTrainer : MaskTrainer
{
    private readonly AdamWGroup[] _groups;
    private readonly double[] _baseLr;
    private readonly Parameter[][] _params;   // [layer][W1q, W1k, W1v, W2]
    private float[] _pre = [], _act = [], _pred = [], _target = [], _dPred = [], _dAct = [];

    public RetainingHeadTrainer(MaskTrainConfig config, string runDir) : base(config, runDir)
    {
        if (!config.IsLocret) throw new ArgumentException($"RetainingHeadTrainer needs method locret, not {config.Method}");
        if (!config.Data.Any(kv => kv.Value > 0 && kv.Key != "natural_text"))
            throw new InvalidDataException("locret: the data needs questions after a context (context_synthesis, task_documents or passkeys)");
        Heads = RetainingHeads.Random(Weights.Config, config.HiddenSize!.Value, Training.Pretraining.Pretrainer.SeedOf(config.Seed, -1, 0));
        _params = Enumerable.Range(0, Heads.NumLayers).Select(l => new[]
        {
            new Parameter($"locret.layers.{l}.fc1_q", Heads.W1Q(l), ParamKind.Weight),
            new Parameter($"locret.layers.{l}.fc1_k", Heads.W1K(l), ParamKind.Weight),
            new Parameter($"locret.layers.{l}.fc1_v", Heads.W1V(l), ParamKind.Weight),
            new Parameter($"locret.layers.{l}.fc2", Heads.W2(l), ParamKind.Weight),
        }).ToArray();
        _groups = [new AdamWGroup("heads", config.Lr!.Value, config.WeightDecay!.Value, config.Beta1!.Value, config.Beta2!.Value)];
        _baseLr = [config.Lr.Value];
        Optimizer = new AdamW(_params.SelectMany(p => p), _groups, LrSchedule.Constant, config.ClipNorm!.Value);
    }

    public RetainingHeads Heads { get; }
    public override AdamW Optimizer { get; }
    protected override (string Objective, string Reg) ColumnNames => ("smooth_l1", "smoothness");

    protected override MaskStepRow TrainStep(int k)
    {
        foreach (var p in Optimizer.Parameters) Array.Clear(p.Grad);
        int B = Config.Batch;
        double huber = 0, smooth = 0, overlap = 0;
        for (int b = 0; b < B; b++)
        {
            var seq = Data.Get(k, b);
            var (h, s, o) = Sequence(seq, 1.0 / B);
            huber += h / B; smooth += s / B; overlap += o / B;
        }
        double cv = Config.ClipValue!.Value;
        if (cv > 0)
            foreach (var p in Optimizer.Parameters)
                for (int i = 0; i < p.Grad.Length; i++) p.Grad[i] = Math.Clamp(p.Grad[i], (float)-cv, (float)cv);
        double lr = SetLearningRates(_groups, _baseLr, k);
        double norm = Optimizer.Step();
        double sw = Config.SmoothWeight!.Value;
        return new MaskStepRow(k, huber + sw * smooth, huber, smooth, null, null, null, null, lr, norm, 0, overlap);
    }

    /// <summary>Targets, loss and gradients (scaled by <paramref name="scale"/>) of one sequence; returns the mean smooth L1,
    /// the summed smoothness term and the top-10 % overlap.</summary>
    internal (double Huber, double Smooth, double Overlap) Sequence(MaskSequence seq, double scale)
    {
        var c = Weights.Config;
        int C = seq.QaStart, T = seq.Tokens.Length;
        if (C >= T || C < 2) throw new InvalidOperationException($"a {seq.Source} sequence has no questions after its context");
        Model.ForwardHidden(seq.Tokens);
        int L = c.NumLayers, Hkv = c.NumKvHeads, hid = Heads.HiddenSize;
        Ensure(C * hid, C * Hkv);
        double huber = 0, smooth = 0, overlap = 0;
        float sw = (float)Config.SmoothWeight!.Value;
        float hScale = (float)(scale / ((double)L * Hkv * C)), sScale = (float)(scale * sw / ((double)Hkv * (C - 1)));
        for (int l = 0; l < L; l++)
        {
            var q = Model.LayerQueries(l); var kk = Model.LayerKeys(l); var v = Model.LayerValues(l);
            var target = _target.AsSpan(0, C * Hkv);
            CausalImportance(q, kk, C, T, target);
            var pre = _pre.AsSpan(0, C * hid); var act = _act.AsSpan(0, C * hid); var pred = _pred.AsSpan(0, C * Hkv);
            Heads.Forward(l, q, kk, v, C, pre, act, pred);
            var dPred = _dPred.AsSpan(0, C * Hkv);
            // smooth L1 (β = 1) and its gradient
            for (int i = 0; i < C * Hkv; i++)
            {
                float d = pred[i] - target[i], ad = MathF.Abs(d);
                huber += ad < 1 ? 0.5 * d * d : ad - 0.5;
                dPred[i] = hScale * (ad < 1 ? d : MathF.Sign(d));
            }
            // smoothness: mean over heads and neighbouring tokens of (pred[j + 1] − pred[j])²
            double layerSmooth = 0;
            for (int g = 0; g < Hkv; g++)
                for (int j = 0; j + 1 < C; j++)
                {
                    float d = pred[(j + 1) * Hkv + g] - pred[j * Hkv + g];
                    layerSmooth += (double)d * d;
                    dPred[(j + 1) * Hkv + g] += 2 * sScale * d;
                    dPred[j * Hkv + g] -= 2 * sScale * d;
                }
            smooth += layerSmooth / (Hkv * (C - 1));
            overlap += TopOverlap(pred, target, C, Hkv) / L;
            // backward through fc2, silu and fc1 (three column blocks)
            var p = _params[l];
            var dAct = _dAct.AsSpan(0, C * hid);
            LinearOp.Backward(dPred, act, Heads.W2(l), dAct, p[3].Grad, default, C, hid, Hkv, accumulateDx: false);
            for (int i = 0; i < C * hid; i++)
            {
                float x = pre[i], sg = 1f / (1f + MathF.Exp(-x));
                dAct[i] *= sg * (1 + x * (1 - sg));
            }
            LinearOp.Backward(dAct, q[..(C * c.QDim)], Heads.W1Q(l), default, p[0].Grad, default, C, c.QDim, hid);
            LinearOp.Backward(dAct, kk[..(C * c.KvDim)], Heads.W1K(l), default, p[1].Grad, default, C, c.KvDim, hid);
            LinearOp.Backward(dAct, v[..(C * c.KvDim)], Heads.W1V(l), default, p[2].Grad, default, C, c.KvDim, hid);
        }
        return (huber / ((double)L * Hkv * C), smooth, overlap);
    }

    /// <summary>target[j · KvHeads + g] = max over rows i in [C, T) and query heads h of group g of q_i,h · k_j,g / √hd, for j &lt; C.</summary>
    public void CausalImportance(ReadOnlySpan<float> q, ReadOnlySpan<float> k, int C, int T, Span<float> target)
    {
        var c = Weights.Config;
        int Hq = c.NumHeads, Hkv = c.NumKvHeads, hd = c.HeadDim, group = Hq / Hkv;
        float scale = 1f / MathF.Sqrt(hd);
        target[..(C * Hkv)].Fill(float.NegativeInfinity);
        for (int i = C; i < T; i++)
            for (int h = 0; h < Hq; h++)
            {
                int g = h / group;
                var qi = q.Slice((i * Hq + h) * hd, hd);
                for (int j = 0; j < C; j++)
                {
                    float s = TensorPrimitives.Dot(qi, k.Slice((j * Hkv + g) * hd, hd)) * scale;
                    ref float t = ref target[j * Hkv + g];
                    if (s > t) t = s;
                }
            }
    }

    /// <summary>Per head, the share of the true top 10 % of tokens that the prediction also puts in its top 10 %.</summary>
    private static double TopOverlap(ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int C, int Hkv)
    {
        int top = Math.Max(1, C / 10);
        double sum = 0;
        for (int g = 0; g < Hkv; g++)
        {
            var p = new float[C]; var t = new float[C];
            for (int j = 0; j < C; j++) { p[j] = pred[j * Hkv + g]; t[j] = target[j * Hkv + g]; }
            var a = Enumerable.Range(0, C).OrderByDescending(j => p[j]).Take(top).ToHashSet();
            sum += Enumerable.Range(0, C).OrderByDescending(j => t[j]).Take(top).Count(a.Contains) / (double)top;
        }
        return sum / Hkv;
    }

    private void Ensure(int hidden, int heads)
    {
        if (_pre.Length < hidden) { _pre = new float[hidden]; _act = new float[hidden]; _dAct = new float[hidden]; }
        if (_pred.Length < heads) { _pred = new float[heads]; _target = new float[heads]; _dPred = new float[heads]; }
    }

    /// <summary>retaining_heads.safetensors.</summary>
    public override void Export(string dir) => Heads.Save(Path.Combine(dir, "retaining_heads.safetensors"));

    protected override IEnumerable<(string Key, object Value)> SummaryExtras()
    {
        int tail = Math.Max(1, Rows.Count / 10);
        var last = Rows.TakeLast(tail).Where(r => r.Overlap is not null).ToArray();
        if (last.Length > 0) yield return ("top10_overlap_mean_last_tenth", Math.Round(last.Average(r => r.Overlap!.Value), 4));
        yield return ("hidden_size", Heads.HiddenSize);
    }
}
