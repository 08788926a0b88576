using System.Runtime.Intrinsics;
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
        MaxTabled = (1 << 23) / Math.Max(1, headDim / 2);
    }

    public int HeadDim { get; }
    public ReadOnlySpan<float> InvFreq => _invFreq;

    /// <summary>inv_freq_i = 1 / theta^(2i/headDim), then the llama3 rescaling when configured, computed as transformers
    /// computes them (<c>_compute_default_rope_parameters</c>, <c>_compute_llama3_parameters</c>): every step in fp32, in
    /// its order. So positions·inv_freq are the angles Hugging Face and LibTorch rotate by (a frequency computed in double
    /// and rounded once differs in the last bit, and the angle drifts with the position: at 4K tokens, 4e-4 of a logit).</summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        int half = headDim / 2;
        var inv = new float[half];
        float thetaF = (float)theta;
        for (int i = 0; i < half; i++)
        {
            float exponent = (float)(2 * i) / headDim;               // arange(0, d, 2).float() / d
            float f = 1f / MathF.Pow(thetaF, exponent);               // 1.0 / (base ** exponent): pow, then reciprocal
            if (scaling is { } s)
            {
                float lowWavelen = (float)(s.OriginalMaxPositionEmbeddings / s.LowFreqFactor);
                float highWavelen = (float)(s.OriginalMaxPositionEmbeddings / s.HighFreqFactor);
                float wavelen = 1f / f * (float)(2 * Math.PI);        // 2π / inv_freq = inv_freq.reciprocal() · 2π
                float factor = (float)s.Factor;
                float llama = wavelen > lowWavelen ? f / factor : f;
                if (!(wavelen < highWavelen) && !(wavelen > lowWavelen))
                {
                    float smooth = (1f / wavelen * s.OriginalMaxPositionEmbeddings - (float)s.LowFreqFactor)
                                   / (float)(s.HighFreqFactor - s.LowFreqFactor);
                    llama = (1f - smooth) * llama / factor + smooth * llama;
                }
                f = llama;
            }
            inv[i] = f;
        }
        return inv;
    }

    private float[] _cos = [], _sin = [];   // [position × half]: the rotation of every position in [0, _tabled)
    private int _tabled;

    /// <summary>Positions tabled at most (default: both tables ≤ 64 MB); rows beyond are rotated from angles computed on the spot.</summary>
    internal int MaxTabled { get; set; }

    /// <summary>Rotates <paramref name="heads"/> heads of every row of <paramref name="x"/>
    /// ([rows × stride], head h at column h·HeadDim) in place; row r is at position positions[r].
    /// cos and sin of each (position, frequency) are computed once per position for the life of this object
    /// (the same fp32 values as computing them per call); rows are split over the kernel threads.
    /// Not safe to call from several threads at once (the tables grow).</summary>
    public unsafe void Apply(Span<float> x, int stride, int heads, ReadOnlySpan<int> positions)
    {
        int rows = positions.Length, max = 0;
        if (rows > 0 && x.Length < (long)(rows - 1) * stride + heads * HeadDim) throw new ArgumentException("RoPE buffer too small");
        foreach (int p in positions)
        {
            if (p < 0) throw new ArgumentOutOfRangeException(nameof(positions), p, "positions must be ≥ 0");
            max = Math.Max(max, p);
        }
        if (rows > 0) Table(max + 1);
        fixed (float* px = x)
        fixed (int* pp = positions)
        {
            float* cx = px;
            int* cp = pp;
            RowParallel.For(rows, (long)rows * heads * HeadDim, (r0, r1) => Rotate(cx, stride, 0, heads, cp, r0, r1));
        }
    }

    /// <summary>Makes sure positions [0, count) are tabled (as far as <see cref="MaxTabled"/> allows); then
    /// <see cref="Rotate"/> may run on several threads at once.</summary>
    internal void Table(int count)
    {
        count = Math.Min(count, MaxTabled);
        if (count <= _tabled) return;
        int half = HeadDim / 2, n = Math.Max(count, Math.Min(MaxTabled, 2 * _tabled));
        Array.Resize(ref _cos, n * half);
        Array.Resize(ref _sin, n * half);
        for (int p = _tabled; p < n; p++)
            for (int i = 0; i < half; i++)
            {
                float angle = p * _invFreq[i]; // fp32 product, as in HF
                _cos[p * half + i] = MathF.Cos(angle);
                _sin[p * half + i] = MathF.Sin(angle);
            }
        _tabled = n;
    }

    /// <summary>Rotates heads [firstHead, firstHead + heads) of rows [r0, r1) (positions tabled by <see cref="Table"/>).</summary>
    internal unsafe void Rotate(float* x, int stride, int firstHead, int heads, int* positions, int r0, int r1)
    {
        int half = HeadDim / 2;
        float* cos = stackalloc float[half];
        float* sin = stackalloc float[half];
        fixed (float* tc = _cos, ts = _sin)
        {
            for (int r = r0; r < r1; r++)
            {
                int pos = positions[r];
                float* c = cos, s = sin;
                if (pos < _tabled) { c = tc + (long)pos * half; s = ts + (long)pos * half; }
                else
                    for (int i = 0; i < half; i++)
                    {
                        float angle = pos * _invFreq[i];
                        cos[i] = MathF.Cos(angle);
                        sin[i] = MathF.Sin(angle);
                    }
                for (int h = firstHead; h < firstHead + heads; h++)
                {
                    float* v = x + (long)r * stride + h * HeadDim;
                    int i = 0;
                    // a·cos − b·sin and b·cos + a·sin, each product rounded, as in the scalar loop
                    if (Vector512.IsHardwareAccelerated)
                        for (; i + 16 <= half; i += 16)
                        {
                            var a = Vector512.Load(v + i); var b = Vector512.Load(v + i + half);
                            var cv = Vector512.Load(c + i); var sv = Vector512.Load(s + i);
                            (a * cv - b * sv).Store(v + i);
                            (b * cv + a * sv).Store(v + i + half);
                        }
                    if (Vector256.IsHardwareAccelerated)
                        for (; i + 8 <= half; i += 8)
                        {
                            var a = Vector256.Load(v + i); var b = Vector256.Load(v + i + half);
                            var cv = Vector256.Load(c + i); var sv = Vector256.Load(s + i);
                            (a * cv - b * sv).Store(v + i);
                            (b * cv + a * sv).Store(v + i + half);
                        }
                    for (; i < half; i++)
                    {
                        float a = v[i], b = v[i + half];
                        v[i] = a * c[i] - b * s[i];
                        v[i + half] = b * c[i] + a * s[i];
                    }
                }
            }
        }
    }
}
