using System.Buffers.Binary;

namespace KvNotebooks.Cache;

/// <summary>fp32 ↔ 16-bit floats for KV storage: IEEE half (<see cref="Half"/>'s conversion, round to nearest even)
/// and bfloat16 (fp32's upper 16 bits after rounding the lower 16 to nearest even; NaN stays NaN). Little-endian bytes.</summary>
public static class Float16
{
    public static void Encode(ReadOnlySpan<float> x, Span<byte> bytes, KvFormat format)
    {
        if (bytes.Length < 2 * x.Length) throw new ArgumentException($"{x.Length} values need {2 * x.Length} bytes, got {bytes.Length}");
        for (int i = 0; i < x.Length; i++)
            BinaryPrimitives.WriteUInt16LittleEndian(bytes[(2 * i)..], format == KvFormat.Bf16 ? ToBf16(x[i]) : BitConverter.HalfToUInt16Bits((Half)x[i]));
    }

    public static void Decode(ReadOnlySpan<byte> bytes, Span<float> x, KvFormat format)
    {
        if (bytes.Length < 2 * x.Length) throw new ArgumentException($"{x.Length} values need {2 * x.Length} bytes, got {bytes.Length}");
        for (int i = 0; i < x.Length; i++)
        {
            ushort v = BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]);
            x[i] = format == KvFormat.Bf16 ? BitConverter.Int32BitsToSingle(v << 16) : (float)BitConverter.UInt16BitsToHalf(v);
        }
    }

    /// <summary>fp32 → bfloat16 bits, rounding to nearest even.</summary>
    public static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((u >> 16) | 0x40);   // keep it a (quiet) NaN
        uint rounded = u + 0x7FFF + ((u >> 16) & 1);
        return (ushort)(rounded >> 16);
    }
}
