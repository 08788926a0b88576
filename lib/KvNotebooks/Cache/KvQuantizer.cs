namespace KvNotebooks.Cache;

/// <summary>
/// Asymmetric min/max quantization of a group of values to b-bit codes: zero-point z = the group's
/// minimum and scale s = (max − z) / (2^b − 1), both stored in fp16 and rounded outward (z down, s up) so
/// that every value stays inside [z, z + s·(2^b − 1)]; code = round((x − z) / s); x̂ = z + code·s. Hence
/// |x − x̂| ≤ s / 2 (plus fp32 rounding). Codes are packed b bits at a time, low bits first.
/// </summary>
public static class KvQuantizer
{
    /// <summary>Quantizes <c>x[i·stride]</c>, i &lt; <paramref name="count"/>, writing one unpacked code per
    /// value into <paramref name="codes"/>[i·codeStride].</summary>
    public static (Half Scale, Half Zero) Quantize(ReadOnlySpan<float> x, int count, int stride, int bits,
                                                   Span<byte> codes, int codeStride)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        for (int i = 0; i < count; i++)
        {
            float v = x[i * stride];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        if (!float.IsFinite(min) || !float.IsFinite(max)) throw new InvalidOperationException("KV quantization met a non-finite value");
        Half zero = (Half)min;
        if ((float)zero > min) zero = Half.BitDecrement(zero);
        int levels = (1 << bits) - 1;
        float s = (max - (float)zero) / levels;
        Half scale = (Half)s;
        if ((float)scale < s) scale = Half.BitIncrement(scale);
        if (!Half.IsFinite(zero) || !Half.IsFinite(scale))
            throw new InvalidOperationException($"KV values in [{min}, {max}] are outside the fp16 range of the scales");
        float z = (float)zero, sc = (float)scale, inv = sc > 0 ? 1f / sc : 0f;
        for (int i = 0; i < count; i++)
        {
            float q = MathF.Round((x[i * stride] - z) * inv);
            codes[i * codeStride] = (byte)Math.Clamp(q, 0f, levels);
        }
        return (scale, zero);
    }

    public static float Dequantize(int code, Half scale, Half zero) => (float)zero + code * (float)scale;

    /// <summary>Packs one code per byte into <paramref name="bits"/>-bit fields.</summary>
    public static void Pack(ReadOnlySpan<byte> codes, int bits, Span<byte> packed)
    {
        packed.Clear();
        for (int i = 0; i < codes.Length; i++)
        {
            long bit = (long)i * bits;
            packed[(int)(bit >> 3)] |= (byte)(codes[i] << (int)(bit & 7));
        }
    }

    /// <summary>Code <paramref name="index"/> of a packed array.</summary>
    public static int Unpack(ReadOnlySpan<byte> packed, int bits, int index)
    {
        long bit = (long)index * bits;
        return (packed[(int)(bit >> 3)] >> (int)(bit & 7)) & ((1 << bits) - 1);
    }
}
