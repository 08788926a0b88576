namespace KvNotebooks.Training.Ops;

/// <summary>h = silu(g) ⊙ u with silu(g) = g·σ(g), element-wise.</summary>
public static class SwiGluOp
{
    /// <summary>gate, up [n] → h [n].</summary>
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        for (int i = 0; i < h.Length; i++)
        {
            float g = gate[i];
            h[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    /// <summary>dh [n] → dgate += dh·u·σ(g)(1 + g(1 − σ(g))), dup += dh·silu(g).</summary>
    public static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dgate, Span<float> dup)
    {
        for (int i = 0; i < dh.Length; i++)
        {
            float g = gate[i], sig = 1f / (1f + MathF.Exp(-g));
            dgate[i] += dh[i] * up[i] * sig * (1f + g * (1f - sig));
            dup[i] += dh[i] * g * sig;
        }
    }
}
