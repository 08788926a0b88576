using System.Runtime.InteropServices;

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

    /// <summary>Restores values, moments and step in place; parameter names and sizes must match the optimizer's,
    /// and every key of <paramref name="extra"/> must be in the file (its array is filled in place).</summary>
    public static void Load(string path, AdamW optimizer, IReadOnlyDictionary<string, float[]>? extra = null)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        if (r.ReadString() != Magic) throw new InvalidDataException($"{path}: not a KvNotebooks checkpoint");
        int version = r.ReadInt32();
        if (version != Version) throw new InvalidDataException($"{path}: checkpoint version {version}, expected {Version}");
        int step = r.ReadInt32();
        var ps = optimizer.Parameters;
        int count = r.ReadInt32();
        if (count != ps.Count) throw new InvalidDataException($"{path}: {count} parameters, the optimizer has {ps.Count}");
        for (int i = 0; i < count; i++)
        {
            string name = r.ReadString(); int len = r.ReadInt32();
            if (name != ps[i].Name || len != ps[i].Value.Length)
                throw new InvalidDataException($"{path}: parameter {i} is {name} [{len}], expected {ps[i].Name} [{ps[i].Value.Length}]");
            Read(r, ps[i].Value); Read(r, optimizer.FirstMoment(i)); Read(r, optimizer.SecondMoment(i));
        }
        int extras = r.ReadInt32();
        var seen = new HashSet<string>();
        for (int e = 0; e < extras; e++)
        {
            string name = r.ReadString(); int len = r.ReadInt32();
            var buf = extra is not null && extra.TryGetValue(name, out var a) ? a : new float[len];
            if (buf.Length != len) throw new InvalidDataException($"{path}: extra {name} has {len} values, expected {buf.Length}");
            Read(r, buf); seen.Add(name);
        }
        if (extra is not null)
            foreach (var key in extra.Keys)
                if (!seen.Contains(key)) throw new InvalidDataException($"{path}: extra array {key} missing");
        if (r.ReadString() != Magic) throw new InvalidDataException($"{path}: truncated checkpoint");
        optimizer.StepCount = step;
    }

    private static void Write(BinaryWriter w, float[] a) => w.Write(MemoryMarshal.AsBytes(a.AsSpan()));

    private static void Read(BinaryReader r, float[] a)
    {
        var bytes = MemoryMarshal.AsBytes(a.AsSpan());
        r.BaseStream.ReadExactly(bytes);
    }
}
