using System.Buffers.Binary;
using System.Runtime.InteropServices;
using KvNotebooks.Validation;

namespace KvNotebooks.Training;

/// <summary>
/// Training checkpoint: every optimizer parameter's values and AdamW moments (by name), the step
/// count, and optional extra named arrays (e.g. DuoAttention gates). Written atomically: a temp
/// file beside the target, flushed to disk, then renamed over it, so a crash never leaves a torn
/// checkpoint. Data order is the caller's business (derive it from the step to resume exactly).
/// </summary>
public static class Checkpoint
{
    private const string Magic = "KVNB-CKPT";
    private const int Version = 1;

    public static void Save(string path, AdamW optimizer, IReadOnlyDictionary<string, float[]>? extra = null)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var w = new BinaryWriter(fs))
        {
            w.Write(Magic); w.Write(Version); w.Write(optimizer.StepCount);
            var ps = optimizer.Parameters;
            w.Write(ps.Count);
            for (int i = 0; i < ps.Count; i++)
            {
                w.Write(ps[i].Name); w.Write(ps[i].Value.Length);
                Write(w, ps[i].Value); Write(w, optimizer.FirstMoment(i)); Write(w, optimizer.SecondMoment(i));
            }
            w.Write(extra?.Count ?? 0);
            if (extra is not null)
                foreach (var (name, values) in extra.OrderBy(e => e.Key, StringComparer.Ordinal))
                {
                    w.Write(name); w.Write(values.Length); Write(w, values);
                }
            w.Write(Magic);
            w.Flush();
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>Longest parameter or extra name read (they are short identifiers).</summary>
    public const int MaxNameBytes = 4096;
    /// <summary>Most extra arrays a checkpoint may list.</summary>
    public const int MaxExtras = 1 << 16;

    /// <summary>Restores values, moments and step; parameter names and sizes must match the optimizer's, and every
    /// key of <paramref name="extra"/> must be in the file (its array is filled in place). All or nothing: the whole
    /// file is read and checked (every length against the bytes left, before allocating; values finite) into fresh
    /// buffers first, and the optimizer and <paramref name="extra"/> change only when all of it is good.</summary>
    public static void Load(string path, AdamW optimizer, IReadOnlyDictionary<string, float[]>? extra = null)
    {
        InputFile.RequireFile(path, "checkpoint");
        using var r = new Reader(path);
        if (r.String("header.magic", 64) != Magic) throw new InputException(path, "header.magic", "not a KvNotebooks checkpoint");
        int version = r.Int32("header.version");
        if (version != Version) throw new InputException(path, "header.version", $"checkpoint version {version}, expected {Version}");
        int step = r.Int32("header.step");
        if (step < 0) throw new InputException(path, "header.step", $"must be ≥ 0 (got {step})");
        var ps = optimizer.Parameters;
        int count = r.Int32("header.parameters");
        if (count != ps.Count) throw new InputException(path, "header.parameters", $"{count} parameters, the optimizer has {ps.Count}");
        var staged = new (float[] Value, float[] M, float[] V)[count];
        for (int i = 0; i < count; i++)
        {
            string at = $"parameters[{i}]";
            string name = r.String(at + ".name", MaxNameBytes);
            int len = r.Int32(at + ".length");
            if (name != ps[i].Name || len != ps[i].Value.Length)
                throw new InputException(path, at, $"is {StrictJson.Printable(name)} [{len}], expected {ps[i].Name} [{ps[i].Value.Length}]");
            var value = r.Floats(len, at + ".values");
            NonFinite.Check(value, path, at + ".values");
            var m = r.Floats(len, at + ".first_moment");
            var v = r.Floats(len, at + ".second_moment");
            if (NonFinite.Count(m) > 0) throw new InputException(path, at + ".first_moment", "holds NaN or ±Inf");
            foreach (float x in v)
                if (!(x >= 0) || !float.IsFinite(x)) throw new InputException(path, at + ".second_moment", $"must be finite and ≥ 0 (holds {x})");
            staged[i] = (value, m, v);
        }
        int extras = r.Int32("header.extras");
        if (extras < 0 || extras > MaxExtras) throw new InputException(path, "header.extras", $"must be in [0, {MaxExtras}] (got {extras})");
        var stagedExtra = new Dictionary<string, float[]>(StringComparer.Ordinal);
        for (int e = 0; e < extras; e++)
        {
            string at = $"extras[{e}]";
            string name = r.String(at + ".name", MaxNameBytes);
            if (stagedExtra.ContainsKey(name)) throw new InputException(path, at + ".name", $"'{StrictJson.Printable(name)}' appears twice");
            int len = r.Int32(at + ".length");
            if (extra is not null && extra.TryGetValue(name, out var a))
            {
                if (a.Length != len) throw new InputException(path, at + ".length", $"extra {name} has {len} values, expected {a.Length}");
                var values = r.Floats(len, at + ".values");
                NonFinite.Check(values, path, at + ".values");
                stagedExtra[name] = values;
            }
            else
            {
                r.Skip(len, at + ".values");
                stagedExtra[name] = [];
            }
        }
        if (extra is not null)
            foreach (var key in extra.Keys)
                if (!stagedExtra.ContainsKey(key)) throw new InputException(path, "extras", $"extra array {key} missing");
        if (r.String("end marker", 64) != Magic) throw new InputException(path, "end marker", "truncated checkpoint");
        if (r.Remaining != 0) throw new InputException(path, "end marker", $"{r.Remaining} bytes follow the end marker");

        // Everything checked: commit.
        for (int i = 0; i < count; i++)
        {
            staged[i].Value.CopyTo(ps[i].Value, 0);
            staged[i].M.CopyTo(optimizer.FirstMoment(i), 0);
            staged[i].V.CopyTo(optimizer.SecondMoment(i), 0);
        }
        if (extra is not null)
            foreach (var (name, target) in extra) stagedExtra[name].CopyTo(target, 0);
        optimizer.StepCount = step;
    }

    private static void Write(BinaryWriter w, float[] a) => w.Write(MemoryMarshal.AsBytes(a.AsSpan()));

    /// <summary>Reads the fields <see cref="BinaryWriter"/> wrote, checking each length against the bytes left
    /// before allocating, and naming the field when the file ends early.</summary>
    private sealed class Reader(string path) : IDisposable
    {
        private readonly FileStream _fs = new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);

        public long Remaining => _fs.Length - _fs.Position;

        private void Need(long bytes, string field)
        {
            if (bytes > Remaining) throw new InputException(path, field, $"truncated: needs {bytes:N0} bytes, {Remaining:N0} left");
        }

        public int Int32(string field)
        {
            Need(4, field);
            Span<byte> b = stackalloc byte[4];
            _fs.ReadExactly(b);
            return BinaryPrimitives.ReadInt32LittleEndian(b);
        }

        /// <summary>BinaryWriter's string: a 7-bit-encoded byte length, then UTF-8.</summary>
        public string String(string field, int maxBytes)
        {
            int length = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (shift > 28) throw new InputException(path, field, "string length prefix is corrupt (more than 5 bytes)");
                Need(1, field);
                int b = _fs.ReadByte();
                length |= (b & 0x7F) << shift;
                if ((b & 0x80) == 0) break;
            }
            if (length < 0 || length > maxBytes) throw new InputException(path, field, $"string of {length} bytes; at most {maxBytes} are allowed");
            Need(length, field);
            var bytes = new byte[length];
            _fs.ReadExactly(bytes);
            return InputFile.DecodeUtf8(bytes, path, field, skipBom: false);
        }

        public float[] Floats(int count, string field)
        {
            if (count < 0) throw new InputException(path, field, $"negative length {count}");
            Need(4L * count, field);
            var a = new float[count];
            _fs.ReadExactly(MemoryMarshal.AsBytes(a.AsSpan()));
            return a;
        }

        public void Skip(int count, string field)
        {
            if (count < 0) throw new InputException(path, field, $"negative length {count}");
            Need(4L * count, field);
            _fs.Seek(4L * count, SeekOrigin.Current);
        }

        public void Dispose() => _fs.Dispose();
    }
}
