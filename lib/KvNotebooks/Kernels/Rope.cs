using KvNotebooks.Model;

namespace KvNotebooks.Kernels;

/// <summary>
/// Rotary position embedding in the Hugging Face (rotate-half) convention: dimension i pairs with
/// i + headDim/2. Positions are the tokens' original positions, also after eviction.
/// </summary>
public sealed class Rope
{
    private readonly float[] _invFreq;

    public Rope(LlamaConfig config) : this(config.HeadDim, config.RopeTheta, config.RopeScaling) { }

    public Rope(int headDim, double theta, RopeScaling? scaling = null)
    {
        HeadDim = headDim;
        _invFreq = InverseFrequencies(headDim, theta, scaling);
    }

    public int HeadDim { get; }
    public ReadOnlySpan<float> InvFreq => _invFreq;

    /// <summary>inv_freq_i = theta^(−2i/headDim), then the llama3 rescaling when configured
    /// (transformers' <c>_compute_llama3_parameters</c>).</summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        int half = headDim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            // HF computes this in float32: 1 / theta ** (arange(0, d, 2).float() / d)
            float exponent = (float)(2 * i) / headDim;
            double f = 1.0 / Math.Pow(theta, exponent);
            if (scaling is { } s)
            {
                double lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
                double highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
                double wavelen = 2 * Math.PI / f;
                if (wavelen > lowWavelen) f /= s.Factor;
                else if (wavelen >= highWavelen)
                {
                    double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    f = (1 - smooth) * f / s.Factor + smooth * f;
                }
            }
            inv[i] = (float)f;
        }
        return inv;
    }

    /// <summary>Rotates <paramref name="heads"/> heads of every row of <paramref name="x"/>
    /// ([rows × stride], head h at column h·HeadDim) in place; row r is at position positions[r].</summary>
    public void Apply(Span<float> x, int stride, int heads, ReadOnlySpan<int> positions)
    {
        int half = HeadDim / 2;
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        for (int r = 0; r < positions.Length; r++)
        {
            for (int i = 0; i < half; i++)
            {
                float angle = positions[r] * _invFreq[i]; // fp32 product, as in HF
                cos[i] = MathF.Cos(angle);
                sin[i] = MathF.Sin(angle);
            }
            for (int h = 0; h < heads; h++)
            {
                var v = x.Slice(r * stride + h * HeadDim, HeadDim);
                for (int i = 0; i < half; i++)
                {
                    float a = v[i], b = v[i + half];
                    v[i] = a * cos[i] - b * sin[i];
                    v[i + half] = b * cos[i] + a * sin[i];
                }
            }
        }
    }
}
