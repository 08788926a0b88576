using KvNotebooks.Cache;

namespace KvNotebooks.Eviction;

/// <summary>
/// KV quantization in the KIVI layout (Liu et al. 2024; FlexGen-style group-wise min/max codes): nothing
/// is evicted, but every KV older than the full-precision recent window is stored as
/// <see cref="KvQuantization.Bits"/>-bit codes — keys per channel over groups of tokens, values per token
/// over groups of channels — with fp16 scales and zero-points (<see cref="QuantizedKvStore"/>). Attention
/// reads dequantized values. The footprint counts bits (a b-bit entry counts b/16 of an fp16 one) and the
/// measured bytes are the codes, scales, zero-points and positions really held.
/// </summary>
public sealed class QuantizedKv : IEvictionMethod
{
    public QuantizedKv(int bits = 4, int groupSize = 32, int residual = 128)
    {
        Quantization = new KvQuantization(bits, groupSize, residual);
        if (bits is not (2 or 4 or 8)) throw new ArgumentException($"--bits must be 2, 4 or 8 (got {bits})");
        if (groupSize < 1) throw new ArgumentException($"--group-size must be ≥ 1 (got {groupSize})");
        if (residual < 0) throw new ArgumentException($"--residual must be ≥ 0 (got {residual})");
    }

    public KvQuantization Quantization { get; }
    public string Name => "quantized";
    public KvStorage Storage => new(Quantization: Quantization);

    /// <summary>After the layer attended, whole groups of residual entries older than the window become codes.</summary>
    public void Evict(EvictionContext ctx) =>
        (ctx.Cache.Quantized ?? throw new InvalidOperationException("quantized KV needs a cache built with its storage (Session does this)"))
            .Flush(ctx.Layer, ctx.Cache.Layer(ctx.Layer));
}
