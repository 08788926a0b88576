using System.Numerics;
using System.Numerics.Tensors;

namespace KvNotebooks.Training;

/// <summary>One AdamW parameter group (PyTorch semantics). <see cref="Maximize"/> ascends
/// (PruLong's λ multipliers).</summary>
public sealed record AdamWGroup(string Name, double Lr, double WeightDecay = 0.0, double Beta1 = 0.9, double Beta2 = 0.95,
    double Eps = 1e-8, bool Maximize = false);

/// <summary>
/// AdamW (decoupled weight decay, bias-corrected moments, as torch.optim.AdamW) over a fixed list of
/// parameters, with a shared <see cref="LrSchedule"/> and global-norm gradient clipping over the
/// non-frozen parameters. Frozen parameters are skipped entirely (no state change). Deterministic.
/// </summary>
public sealed class AdamW
{
    public const int DecayGroup = 0, NoDecayGroup = 1;

    private readonly Parameter[] _params;
    private readonly float[][] _m, _v;

    public AdamW(IEnumerable<Parameter> parameters, IReadOnlyList<AdamWGroup> groups, LrSchedule? schedule = null, double maxGradNorm = 1.0)
    {
        _params = parameters.ToArray();
        Groups = groups;
        Schedule = schedule ?? LrSchedule.Constant;
        MaxGradNorm = maxGradNorm;
        foreach (var p in _params)
            if (p.Group < 0 || p.Group >= groups.Count) throw new ArgumentException($"{p.Name}: group {p.Group} not among {groups.Count} groups");
        _m = _params.Select(p => new float[p.Value.Length]).ToArray();
        _v = _params.Select(p => new float[p.Value.Length]).ToArray();
    }

    /// <summary>Group 0 "decay" (weights, embeddings) and group 1 "no_decay" (norms, biases), matching <see cref="Parameter"/>'s defaults.</summary>
    public static AdamWGroup[] DefaultGroups(double lr, double weightDecay = 0.1, double beta1 = 0.9, double beta2 = 0.95, double eps = 1e-8) =>
    [
        new("decay", lr, weightDecay, beta1, beta2, eps),
        new("no_decay", lr, 0.0, beta1, beta2, eps),
    ];

    public IReadOnlyList<AdamWGroup> Groups { get; }
    public LrSchedule Schedule { get; }
    /// <summary>Clip threshold on the global gradient L2 norm; ≤ 0 disables clipping.</summary>
    public double MaxGradNorm { get; }
    /// <summary>Updates done so far.</summary>
    public int StepCount { get; set; }
    /// <summary>Global gradient norm before clipping, at the last <see cref="Step"/>.</summary>
    public double LastGradNorm { get; private set; }
    public IReadOnlyList<Parameter> Parameters => _params;
    /// <summary>First and second moment buffers of parameter i (for checkpoints).</summary>
    public float[] FirstMoment(int i) => _m[i];
    public float[] SecondMoment(int i) => _v[i];

    /// <summary>L2 norm over the gradients of non-frozen parameters (sums of squares over blocks of 1024
    /// values in fp32 vectors, the blocks accumulated in double).</summary>
    public double GradNorm()
    {
        double ss = 0;
        foreach (var p in _params)
            if (!p.Frozen)
                for (int i = 0; i < p.Grad.Length; i += 1024)
                    ss += TensorPrimitives.SumOfSquares(p.Grad.AsSpan(i, Math.Min(1024, p.Grad.Length - i)));
        return Math.Sqrt(ss);
    }

    /// <summary>Scales the non-frozen gradients in place so their global norm is at most
    /// <paramref name="maxNorm"/> (coefficient maxNorm/(norm + 1e-6), capped at 1, as torch's clip_grad_norm_).
    /// Returns the norm before clipping.</summary>
    public double ClipGradNorm(double maxNorm)
    {
        double norm = GradNorm();
        double coef = maxNorm / (norm + 1e-6);
        if (maxNorm > 0 && coef < 1.0)
            foreach (var p in _params)
                if (!p.Frozen)
                {
                    var g = p.Grad;
                    for (int i = 0; i < g.Length; i++) g[i] = (float)(g[i] * coef);
                }
        return norm;
    }

    /// <summary>Clip, then one AdamW update of every non-frozen parameter with lr = group.Lr × Schedule.Factor(step).
    /// Does not zero the gradients. Returns the pre-clip gradient norm.</summary>
    public double Step()
    {
        LastGradNorm = MaxGradNorm > 0 ? ClipGradNorm(MaxGradNorm) : GradNorm();
        StepCount++;
        double factor = Schedule.Factor(StepCount);
        for (int pi = 0; pi < _params.Length; pi++)
        {
            var p = _params[pi];
            if (p.Frozen) continue;
            var grp = Groups[p.Group];
            double lr = grp.Lr * factor;
            double bc1 = 1.0 - Math.Pow(grp.Beta1, StepCount), bc2 = 1.0 - Math.Pow(grp.Beta2, StepCount);
            float b1 = (float)grp.Beta1, b2 = (float)grp.Beta2;
            float decay = (float)(1.0 - lr * grp.WeightDecay);
            float stepSize = (float)(lr / bc1);
            float sqrtBc2 = (float)Math.Sqrt(bc2), eps = (float)grp.Eps;
            float sign = grp.Maximize ? -1f : 1f;
            var w = p.Value; var gr = p.Grad; var m = _m[pi]; var v = _v[pi];
            int i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                // the same arithmetic as the scalar loop below, Vector<float>.Count lanes at a time
                var vb1 = new Vector<float>(b1); var vb2 = new Vector<float>(b2);
                var vc1 = new Vector<float>(1f - b1); var vc2 = new Vector<float>(1f - b2);
                var vdecay = new Vector<float>(decay); var vstep = new Vector<float>(stepSize);
                var vbc2 = new Vector<float>(sqrtBc2); var veps = new Vector<float>(eps); var vsign = new Vector<float>(sign);
                for (; i + Vector<float>.Count <= w.Length; i += Vector<float>.Count)
                {
                    var g = vsign * new Vector<float>(gr, i);
                    var mi = vb1 * new Vector<float>(m, i) + vc1 * g;
                    var vi = vb2 * new Vector<float>(v, i) + vc2 * g * g;
                    mi.CopyTo(m, i);
                    vi.CopyTo(v, i);
                    (new Vector<float>(w, i) * vdecay - vstep * mi / (Vector.SquareRoot(vi) / vbc2 + veps)).CopyTo(w, i);
                }
            }
            for (; i < w.Length; i++)
            {
                float g = sign * gr[i];
                m[i] = b1 * m[i] + (1f - b1) * g;
                v[i] = b2 * v[i] + (1f - b2) * g * g;
                w[i] = w[i] * decay - stepSize * m[i] / (MathF.Sqrt(v[i]) / sqrtBc2 + eps);
            }
        }
        return LastGradNorm;
    }

    /// <summary>Zeroes every parameter's gradient (frozen ones included; they stay zero).</summary>
    public void ZeroGrad()
    {
        foreach (var p in _params) Array.Clear(p.Grad);
    }
}
