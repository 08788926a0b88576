namespace KvNotebooks.Cache;

/// <summary>
/// How a cache stores KVs. The default is one fp32 copy per (layer, KV head). <see cref="ReplicatePerQueryHead"/>
/// stores one copy per query head instead (what the original SnapKV / PyramidKV code does after
/// <c>repeat_kv</c>; docs/methods.md, "GQA"): group-size times the memory, and each copy can keep its
/// own entries. <see cref="Quantization"/> stores KVs as low-bit codes (KIVI layout) behind a
/// full-precision recent window.
/// </summary>
public sealed record KvStorage(bool ReplicatePerQueryHead = false, KvQuantization? Quantization = null)
{
    public static readonly KvStorage Default = new();
}

/// <summary>How a quantized entry's values are held.</summary>
public enum KvFormat
{
    /// <summary>b-bit min/max codes with fp16 scales and zero-points (KIVI's layout).</summary>
    Codes,
    /// <summary>IEEE half precision (1 sign, 5 exponent, 10 mantissa bits).</summary>
    Fp16,
    /// <summary>bfloat16: fp32's sign and 8 exponent bits with 7 mantissa bits (round to nearest even).</summary>
    Bf16,
}

/// <summary>
/// KIVI-style KV quantization: keys per channel (one scale and zero-point per channel over a block of
/// <see cref="GroupSize"/> tokens), values per token (one scale and zero-point per token and group of
/// <see cref="GroupSize"/> channels), <see cref="Bits"/>-bit codes, scales and zero-points in fp16. The
/// newest <see cref="Residual"/>…<see cref="Residual"/> + <see cref="GroupSize"/> − 1 tokens stay in full precision;
/// whenever a whole group of older tokens is available it is quantized.
/// </summary>
public sealed record KvQuantization(int Bits = 4, int GroupSize = 32, int Residual = 128)
{
    /// <summary>What a stored value is: b-bit min/max codes (the default), or a 16-bit float (fp16 or bf16) with no
    /// scales — whole groups of <see cref="GroupSize"/> tokens older than <see cref="Residual"/> are converted.</summary>
    public KvFormat Format { get; init; } = KvFormat.Codes;

    /// <summary>16-bit float storage: every whole group of tokens older than the residual window held as fp16 (or bf16).</summary>
    public static KvQuantization Float16(bool bf16 = false, int groupSize = 32, int residual = 0) =>
        new(16, groupSize, residual) { Format = bf16 ? KvFormat.Bf16 : KvFormat.Fp16 };

    /// <summary>"4-bit", "fp16", "bf16".</summary>
    public string Name => Format switch { KvFormat.Fp16 => "fp16", KvFormat.Bf16 => "bf16", _ => $"{Bits}-bit" };

    /// <summary>Channels per value group: <see cref="GroupSize"/>, at most the head dimension.</summary>
    public int ValueGroup(int headDim) => Math.Min(GroupSize, headDim);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first impossible setting.</summary>
    public void Validate(int headDim)
    {
        if (Format == KvFormat.Codes && Bits is not (2 or 4 or 8)) throw new ArgumentException($"quantization: bits must be 2, 4 or 8 (got {Bits})");
        if (Format != KvFormat.Codes && Bits != 16) throw new ArgumentException($"quantization: {Format} values have 16 bits (got {Bits})");
        if (GroupSize < 1) throw new ArgumentException($"quantization: group size must be ≥ 1 (got {GroupSize})");
        if (Residual < 0) throw new ArgumentException($"quantization: the full-precision residual window must be ≥ 0 (got {Residual})");
        if (headDim % ValueGroup(headDim) != 0)
            throw new ArgumentException($"quantization: group size {GroupSize} does not divide the head dimension {headDim}");
    }

    /// <summary>Bytes of one quantized block of <see cref="GroupSize"/> tokens for one head: key and value
    /// codes, fp16 scales and zero-points, int32 positions.</summary>
    public long BlockBytes(int headDim)
    {
        long codes = ((long)GroupSize * headDim * Bits + 7) / 8;
        if (Format != KvFormat.Codes) return 2 * codes + 4L * GroupSize;   // 16-bit keys and values, positions: no scales
        long keyParams = 2L * headDim, valueParams = 2L * GroupSize * (headDim / ValueGroup(headDim));
        return 2 * codes + 2 * (keyParams + valueParams) + 4L * GroupSize;
    }
}
