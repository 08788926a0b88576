using KvNotebooks.Training;

namespace KvNotebooks.Tests.Training;

public class AdamWTests
{
    [Fact]
    public void UpdateMatchesHandComputedSteps()
    {
        var w = new Parameter("w", [0.5f, -1.0f, 2.0f], ParamKind.Weight);
        var n = new Parameter("norm", [1.0f, 1.0f], ParamKind.Norm);
        var groups = AdamW.DefaultGroups(lr: 0.1, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8);
        var opt = new AdamW([w, n], groups, maxGradNorm: 0);
        double[][] grads = [[0.2, -0.4, 0.0], [0.1, 0.3, -0.5]];
        double[][] ngrads = [[1.0, -2.0], [0.5, 0.5]];
        double[] p = [0.5, -1.0, 2.0], m = new double[3], v = new double[3];
        double[] q = [1.0, 1.0], mq = new double[2], vq = new double[2];
        for (int t = 1; t <= 2; t++)
        {
            for (int i = 0; i < 3; i++) w.Grad[i] = (float)grads[t - 1][i];
            for (int i = 0; i < 2; i++) n.Grad[i] = (float)ngrads[t - 1][i];
            opt.Step();
            // by hand (torch.optim.AdamW): p ← p(1 − lr·wd) − lr · m̂ / (√v̂ + eps)
            for (int i = 0; i < 3; i++)
            {
                double g = grads[t - 1][i];
                m[i] = 0.9 * m[i] + 0.1 * g; v[i] = 0.999 * v[i] + 0.001 * g * g;
                double mh = m[i] / (1 - Math.Pow(0.9, t)), vh = v[i] / (1 - Math.Pow(0.999, t));
                p[i] = p[i] * (1 - 0.1 * 0.01) - 0.1 * mh / (Math.Sqrt(vh) + 1e-8);
                Assert.Equal(p[i], w.Value[i], 1e-5);
            }
            for (int i = 0; i < 2; i++) // no weight decay on norms
            {
                double g = ngrads[t - 1][i];
                mq[i] = 0.9 * mq[i] + 0.1 * g; vq[i] = 0.999 * vq[i] + 0.001 * g * g;
                q[i] -= 0.1 * (mq[i] / (1 - Math.Pow(0.9, t))) / (Math.Sqrt(vq[i] / (1 - Math.Pow(0.999, t))) + 1e-8);
                Assert.Equal(q[i], n.Value[i], 1e-5);
            }
        }
        Assert.Equal(2, opt.StepCount);
    }

    /// <summary>The vectorised update is the scalar float arithmetic lane by lane: bitwise equal on a
    /// length with a vector tail, including maximize.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void VectorisedUpdateEqualsScalarArithmetic(bool maximize)
    {
        var rng = new Random(3);
        int n = 1037;
        var w = new Parameter("w", Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), ParamKind.Weight);
        var group = new AdamWGroup("g", 0.01, 0.1, 0.9, 0.95, 1e-8, maximize);
        var opt = new AdamW([w], [group], maxGradNorm: 0);
        var p = (float[])w.Value.Clone(); var m = new float[n]; var v = new float[n];
        for (int t = 1; t <= 3; t++)
        {
            for (int i = 0; i < n; i++) w.Grad[i] = (float)(rng.NextDouble() - 0.5) * t;
            opt.Step();
            double bc1 = 1.0 - Math.Pow(0.9, t), bc2 = 1.0 - Math.Pow(0.95, t);
            float b1 = 0.9f, b2 = 0.95f, decay = (float)(1.0 - 0.01 * 0.1), stepSize = (float)(0.01 / bc1), sqrtBc2 = (float)Math.Sqrt(bc2), eps = 1e-8f;
            for (int i = 0; i < n; i++)
            {
                float g = (maximize ? -1f : 1f) * w.Grad[i];
                m[i] = b1 * m[i] + (1f - b1) * g;
                v[i] = b2 * v[i] + (1f - b2) * g * g;
                p[i] = p[i] * decay - stepSize * m[i] / (MathF.Sqrt(v[i]) / sqrtBc2 + eps);
            }
            Assert.Equal(p, w.Value);
            Assert.Equal(m, opt.FirstMoment(0));
            Assert.Equal(v, opt.SecondMoment(0));
        }
    }

    [Fact]
    public void FrozenParametersAreSkippedAndMaximizeAscends()
    {
        var a = new Parameter("a", [1f, 2f], ParamKind.Weight) { Frozen = true };
        var lam = new Parameter("lambda", [0f], ParamKind.Mask) { Group = 1 };
        var opt = new AdamW([a, lam], [new AdamWGroup("w", 0.1, 0.1), new AdamWGroup("lambda", 0.5, Maximize: true)], maxGradNorm: 0);
        a.Grad[0] = 5f; a.Grad[1] = -5f; lam.Grad[0] = 2f;
        opt.Step();
        Assert.Equal([1f, 2f], a.Value);
        Assert.Equal(0.5f, lam.Value[0], 1e-5); // ascent: λ grows along its gradient
        Assert.Equal(2.0, opt.LastGradNorm, 1e-6); // frozen gradients are not part of the norm
    }

    [Fact]
    public void ClippingScalesGlobalNormToMax()
    {
        var a = new Parameter("a", new float[2], ParamKind.Weight);
        var b = new Parameter("b", new float[1], ParamKind.Norm);
        var opt = new AdamW([a, b], AdamW.DefaultGroups(1e-3), maxGradNorm: 1.0);
        a.Grad[0] = 3f; a.Grad[1] = 0f; b.Grad[0] = 4f; // norm 5
        double norm = opt.ClipGradNorm(1.0);
        Assert.Equal(5.0, norm, 1e-6);
        Assert.Equal(1.0, opt.GradNorm(), 1e-5);
        Assert.Equal(0.6f, a.Grad[0], 1e-5); Assert.Equal(0.8f, b.Grad[0], 1e-5); // direction kept
        // below the threshold nothing changes
        a.Grad[0] = 0.3f; b.Grad[0] = 0.4f;
        Assert.Equal(0.5, opt.ClipGradNorm(1.0), 1e-6);
        Assert.Equal(0.3f, a.Grad[0]); Assert.Equal(0.4f, b.Grad[0]);
        // Step clips before updating and reports the pre-clip norm
        a.Grad[0] = 30f; b.Grad[0] = 40f;
        Assert.Equal(50.0, opt.Step(), 1e-4);
        Assert.Equal(1.0, opt.GradNorm(), 1e-5);
    }

    [Fact]
    public void ScheduleValues()
    {
        var cos = new LrSchedule(WarmupSteps: 10, TotalSteps: 110, Decay: LrDecay.Cosine, MinLrRatio: 0.1);
        Assert.Equal(0.1, cos.Factor(1), 1e-12);
        Assert.Equal(0.5, cos.Factor(5), 1e-12);
        Assert.Equal(1.0, cos.Factor(10), 1e-12);
        Assert.Equal(0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI / 4)), cos.Factor(35), 1e-12);
        Assert.Equal(0.55, cos.Factor(60), 1e-12);
        Assert.Equal(0.1, cos.Factor(110), 1e-12);
        Assert.Equal(0.1, cos.Factor(500), 1e-12);
        var lin = cos with { Decay = LrDecay.Linear };
        Assert.Equal(0.775, lin.Factor(35), 1e-12);
        Assert.Equal(0.55, lin.Factor(60), 1e-12);
        Assert.Equal(0.1, lin.Factor(110), 1e-12);
        var constant = new LrSchedule(WarmupSteps: 4);
        Assert.Equal(0.25, constant.Factor(1), 1e-12);
        Assert.Equal(1.0, constant.Factor(4), 1e-12);
        Assert.Equal(1.0, constant.Factor(1000), 1e-12);
        Assert.Equal(1.0, LrSchedule.Constant.Factor(1), 1e-12);
        // PruLong: warmup 10 %, linear decay to 1 %
        var prulong = new LrSchedule(100, 1000, LrDecay.Linear, 0.01);
        Assert.Equal(0.01, prulong.Factor(1000), 1e-12);
    }

    private static List<double> Train(int steps, int seed)
    {
        var c = TrainableLlamaTests.Tiny(tied: true);
        var model = new TrainableLlama(WeightInit.Normal(c, seed, std: 0.1f));
        var opt = new AdamW(model.Parameters, AdamW.DefaultGroups(lr: 1e-2, weightDecay: 0.01),
            new LrSchedule(3, steps, LrDecay.Cosine, 0.1), maxGradNorm: 1.0);
        int[][] batch = [[1, 5, 9, 2, 7, 7, 3, 0, 11, 4], [8, 8, 2, 19, 22, 5, 6, 1, 0, 13]];
        int[] positions = [2, 5, 8];
        var losses = new List<double>();
        for (int s = 0; s < steps; s++)
        {
            model.ZeroGrad();
            double loss = 0;
            foreach (var seq in batch)
                loss += model.ForwardBackward(seq, positions, positions.Select(p => seq[p + 1]).ToArray(), lossScale: 1f / batch.Length);
            losses.Add(loss / batch.Length);
            opt.Step();
        }
        return losses;
    }

    [Fact]
    public void AdamWStepsLowerTheLossOnAFixedBatchDeterministically()
    {
        var losses = Train(40, seed: 5);
        Assert.True(losses[^1] < 0.5 * losses[0], $"loss {losses[0]:F3} → {losses[^1]:F3}");
        Assert.Equal(losses, Train(40, seed: 5)); // bitwise identical given the seed
    }
}
