namespace KvNotebooks.Training.Ops;

/// <summary>
/// PruLong's hard-concrete gate (Louizos et al. 2018) with the constants of the PruLong code
/// (docs/methods.md, "Head masks: DuoAttention and PruLong"; the PruLong code's <c>l0.py</c>): l = −0.1, r = 1.1, temperature β = 2/3, uniform noise in (1e-8, 1 − 1e-8).
/// Training sample: s = σ((log u − log(1 − u) + log α)/β), z = clamp((r − l)·s + l, 0, 1).
/// One log α per (layer, KV head); z feeds <see cref="HeadGateOp"/>.
/// </summary>
public static class HardConcreteOp
{
    public const float Left = -0.1f, Right = 1.1f, Temperature = 2f / 3f, UniformEps = 1e-8f, SoftMaskFactor = 0.8f;

    /// <summary>u [n] ~ U(1e-8, 1 − 1e-8) from a seeded generator (deterministic given its seed).</summary>
    public static void SampleUniform(Random rng, Span<float> u)
    {
        for (int i = 0; i < u.Length; i++)
            u[i] = (float)(UniformEps + (1 - 2 * (double)UniformEps) * rng.NextDouble());
    }

    /// <summary>logAlpha [n], u [n] → z [n].</summary>
    public static void Forward(ReadOnlySpan<float> logAlpha, ReadOnlySpan<float> u, Span<float> z)
    {
        for (int i = 0; i < z.Length; i++)
        {
            float s = Sigmoid((MathF.Log(u[i]) - MathF.Log(1 - u[i]) + logAlpha[i]) / Temperature);
            z[i] = Math.Clamp((Right - Left) * s + Left, 0f, 1f);
        }
    }

    /// <summary>dz [n] → dLogAlpha [n] += dz · (r − l)·s(1 − s)/β where the stretch is inside (0, 1), else 0.</summary>
    public static void Backward(ReadOnlySpan<float> dz, ReadOnlySpan<float> logAlpha, ReadOnlySpan<float> u, Span<float> dLogAlpha)
    {
        for (int i = 0; i < dz.Length; i++)
        {
            float s = Sigmoid((MathF.Log(u[i]) - MathF.Log(1 - u[i]) + logAlpha[i]) / Temperature);
            float pre = (Right - Left) * s + Left;
            if (pre > 0f && pre < 1f) dLogAlpha[i] += dz[i] * (Right - Left) * s * (1 - s) / Temperature;
        }
    }

    /// <summary>P(z = 0) = clamp(σ(β·log(x₀/(1 − x₀)) − log α), ε, 1 − ε) with x₀ = −l/(r − l) (the code's formula).</summary>
    public static float ProbabilityZero(float logAlpha)
    {
        double x0 = -Left / (double)(Right - Left);
        double p = 1 / (1 + Math.Exp(-(Temperature * Math.Log(x0 / (1 - x0)) - logAlpha)));
        return (float)Math.Clamp(p, UniformEps, 1 - UniformEps);
    }

    /// <summary>The code's deterministic (evaluation) mask: soft mask σ(0.8·log α/β) with its
    /// round(Σ P(z = 0)) smallest entries set to 0.</summary>
    public static float[] DeterministicMask(ReadOnlySpan<float> logAlpha)
    {
        var soft = new float[logAlpha.Length];
        double expectedZeros = 0;
        for (int i = 0; i < soft.Length; i++)
        {
            soft[i] = Sigmoid(SoftMaskFactor * logAlpha[i] / Temperature);
            expectedZeros += ProbabilityZero(logAlpha[i]);
        }
        int zeros = (int)Math.Round(expectedZeros);
        foreach (int i in Enumerable.Range(0, soft.Length).OrderBy(i => soft[i]).ThenBy(i => i).Take(zeros)) soft[i] = 0f;
        return soft;
    }

    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));
}
