using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Validation;

namespace KvNotebooks.Model;

/// <summary>Element types we read and write; all are computed in fp32.</summary>
public enum SafetensorsDtype { F32, F16, BF16 }

/// <summary>One tensor's entry in a safetensors header: byte range [Begin, End) of the data section.</summary>
public sealed record TensorInfo(string Name, SafetensorsDtype Dtype, int[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A safetensors file opened for reading (https://github.com/huggingface/safetensors: 8-byte little-endian
/// header length, a JSON header, then the data). The header is validated in full before any data is
/// read; every problem raises <see cref="InputException"/> naming the file and the header field.
/// </summary>
public sealed class SafetensorsFile
{
    /// <summary>Headers larger than this are rejected before anything is allocated (HF's limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private SafetensorsFile(string path, long dataStart, Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path { get; }
    public long DataStart { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Most dimensions a tensor may have (real ones have 1 or 2).</summary>
    public const int MaxRank = 8;

    public static SafetensorsFile Open(string path)
    {
        InputFile.RequireFile(path, "safetensors");
        InputException Bad(string field, string problem) => new(path, field, problem);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = fs.Length;
        if (fileLength < 8) throw Bad("", $"truncated: {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > MaxHeaderBytes) throw Bad("header length", $"{headerLen} exceeds the {MaxHeaderBytes}-byte limit (corrupt or not a safetensors file)");
        if ((long)headerLen > fileLength - 8) throw Bad("header length", $"truncated: header length {headerLen} but only {fileLength - 8} bytes follow");
        var headerBytes = new byte[headerLen];
        fs.ReadExactly(headerBytes);
        using var doc = StrictJson.Parse(headerBytes, path, field: "header");
        var header = new JsonField(doc.RootElement, path, "header");
        if (header.Kind != JsonValueKind.Object) throw header.Error($"not a JSON object{header.Got()}");
        long dataStart = 8 + (long)headerLen, dataLength = fileLength - dataStart;
        var tensors = new Dictionary<string, TensorInfo>();
        var metadata = new Dictionary<string, string>();
        foreach (var (key, entry) in header.Properties())
        {
            if (key == "__metadata__")
            {
                foreach (var (mk, mv) in entry.Properties()) metadata[mk] = mv.String();
                continue;
            }
            if (entry.Kind != JsonValueKind.Object) throw entry.Error($"tensor entry must be an object{entry.Got()}");
            var dtypeField = entry["dtype"];
            string dtypeText = dtypeField.String();
            var dtype = dtypeText switch
            {
                "F32" => SafetensorsDtype.F32,
                "F16" => SafetensorsDtype.F16,
                "BF16" => SafetensorsDtype.BF16,
                _ => throw dtypeField.Error($"dtype {StrictJson.Printable(dtypeText)} is not supported (only F32, F16 and BF16)"),
            };
            var dims = entry["shape"].Items(maxLength: MaxRank);
            var shape = new int[dims.Count];
            long numel = 1;
            for (int i = 0; i < shape.Length; i++)
            {
                long dim = dims[i].Long(0, int.MaxValue);
                shape[i] = (int)dim;
                numel = dim == 0 ? 0 : numel > long.MaxValue / dim ? throw dims[i].Error("the shape's element count overflows") : numel * dim;
            }
            var offsets = entry["data_offsets"].Items(maxLength: 2, minLength: 2);
            long begin = offsets[0].Long(), end = offsets[1].Long();
            if (begin < 0 || end < begin || end > dataLength)
                throw entry["data_offsets"].Error($"[{begin}, {end}] fall outside the {dataLength}-byte data section (truncated file?)");
            long expected = numel > long.MaxValue / 4 ? long.MaxValue : numel * ElementSize(dtype);
            if (end - begin != expected)
                throw entry["data_offsets"].Error($"tensor '{StrictJson.Printable(key)}' holds {end - begin} bytes but shape [{string.Join(", ", shape)}] in {dtypeText} needs {expected}");
            tensors[key] = new TensorInfo(key, dtype, shape, begin, end);
        }
        var sorted = tensors.Values.Where(t => t.End > t.Begin).OrderBy(t => t.Begin).ToArray();
        for (int i = 1; i < sorted.Length; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw Bad(InputException.Join("header", sorted[i].Name), $"tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap in the data section");
        return new SafetensorsFile(path, dataStart, tensors, metadata);
    }

    public static int ElementSize(SafetensorsDtype d) => d == SafetensorsDtype.F32 ? 4 : 2;

    public TensorInfo Info(string name) =>
        Tensors.TryGetValue(name, out var t) ? t : throw new InputException(Path, "header", $"no tensor named '{name}'");

    /// <summary>Reads a tensor as fp32 (F16 and BF16 converted).</summary>
    public float[] ReadFloat32(string name)
    {
        var t = Info(name);
        if (t.ElementCount > Array.MaxLength) throw new InputException(Path, InputException.Join("header", name), $"{t.ElementCount} elements, too many for one array");
        var result = new float[t.ElementCount];
        using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read);
        if (t.Dtype == SafetensorsDtype.F32)
        {
            ReadAll(handle, MemoryMarshal.AsBytes(result.AsSpan()), DataStart + t.Begin);
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
            return result;
        }
        var raw = new ushort[t.ElementCount];
        ReadAll(handle, MemoryMarshal.AsBytes(raw.AsSpan()), DataStart + t.Begin);
        if (t.Dtype == SafetensorsDtype.BF16)
            for (int i = 0; i < raw.Length; i++) result[i] = BitConverter.Int32BitsToSingle(raw[i] << 16);
        else
            for (int i = 0; i < raw.Length; i++) result[i] = (float)BitConverter.UInt16BitsToHalf(raw[i]);
        return result;
    }

    private void ReadAll(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        while (!buffer.IsEmpty)
        {
            int n = RandomAccess.Read(handle, buffer, offset);
            if (n <= 0) throw new InputException(Path, "", "unexpected end of file while reading tensor data (the file shrank?)");
            buffer = buffer[n..];
            offset += n;
        }
    }
}

/// <summary>Writes safetensors files in the Hugging Face layout, atomically.</summary>
public static class Safetensors
{
    /// <summary>Writes <paramref name="tensors"/> (data converted to <paramref name="dtype"/>) to
    /// <paramref name="path"/> via a temporary file and a rename, so a crash never leaves half a file.</summary>
    public static void Write(string path, IEnumerable<(string Name, int[] Shape, float[] Data)> tensors, SafetensorsDtype dtype,
                             IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));
        long offset = 0;
        int es = SafetensorsFile.ElementSize(dtype);
        foreach (var (name, shape, data) in list)
        {
            long numel = shape.Aggregate(1L, (a, b) => a * b);
            if (numel != data.Length) throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] has {numel} elements but the data has {data.Length}");
            header[name] = new JsonObject
            {
                ["dtype"] = dtype.ToString(),
                ["shape"] = new JsonArray(shape.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + numel * es)),
            };
            offset += numel * es;
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (headerBytes.Length + 7) / 8 * 8;
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
                fs.Write(len);
                fs.Write(headerBytes);
                for (int i = headerBytes.Length; i < padded; i++) fs.WriteByte((byte)' ');
                foreach (var (_, _, data) in list) WriteData(fs, data, dtype);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static void WriteData(Stream s, float[] data, SafetensorsDtype dtype)
    {
        if (dtype == SafetensorsDtype.F32)
        {
            s.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            return;
        }
        var buf = new ushort[Math.Min(data.Length, 1 << 16)];
        for (int start = 0; start < data.Length; start += buf.Length)
        {
            int n = Math.Min(buf.Length, data.Length - start);
            for (int i = 0; i < n; i++)
                buf[i] = dtype == SafetensorsDtype.F16 ? BitConverter.HalfToUInt16Bits((Half)data[start + i]) : ToBf16(data[start + i]);
            s.Write(MemoryMarshal.AsBytes(buf.AsSpan(0, n)));
        }
    }

    /// <summary>fp32 → bf16 with round-to-nearest-even, as PyTorch converts (NaN stays NaN).</summary>
    public static ushort ToBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>bf16 → fp32 (exact).</summary>
    public static float FromBf16(ushort b) => BitConverter.Int32BitsToSingle(b << 16);
}
