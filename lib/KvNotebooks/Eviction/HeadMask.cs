using System.Globalization;
using KvNotebooks.Footprint;
using KvNotebooks.Model;

namespace KvNotebooks.Eviction;

/// <summary>
/// A head mask at inference (the engine side of DuoAttention and PruLong): each (layer, KV head) is either a full
/// head (mask 1) or a streaming head (mask 0, sink + window). Head sparsity = fraction of streaming heads.
/// </summary>
public sealed class HeadMask : IEvictionMethod
{
    private readonly bool[,] _full;

    /// <summary>The mask file (TSV, one row per layer, one column per KV head).</summary>
    public static readonly Knob<string> MasksKnob = new("masks", "masks", null,
        "Head masks: TSV, one row per layer, one column per KV head (1 = full head, 0 = streaming)", format: ShortPath);

    /// <summary>How a configuration line names a mask file: its folder and name ("prulong-t0.7/masks.tsv"), which tells
    /// runs apart without a machine's absolute path.</summary>
    public static string ShortPath(string path) =>
        Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(path))) is { Length: > 0 } dir ? $"{dir}/{Path.GetFileName(path)}" : Path.GetFileName(path);

    public static MethodDescriptor Descriptor { get; } = new()
    {
        Name = "headmask",
        Kind = MethodKind.MasksHeads,
        Summary = "A fixed 0/1 head mask: streaming heads keep sinks + window, full heads keep everything",
        Knobs = [MasksKnob, Streaming.SinkKnob, Streaming.WindowKnob],
        CurveKnob = Streaming.WindowKnob,
        Create = (s, config) => new HeadMask(LoadTsv(s.Get(MasksKnob), config), s.Get(Streaming.SinkKnob), s.Get(Streaming.WindowKnob)),
        Footprint = (s, shape) =>
        {
            var mask = LoadTsv(s.Get(MasksKnob));
            var m = new HeadMask(mask);
            return KvFootprint.HeadMix(shape.Plan, shape.GenTokens, m.StreamingHeads, mask.Length, s.Get(Streaming.SinkKnob), s.Get(Streaming.WindowKnob),
                s.Storage.Quantization);
        },
    };

    /// <param name="full">[layers, KV heads]: true = full attention, false = streaming.</param>
    /// <param name="sink">Streaming heads keep the first <paramref name="sink"/> tokens…</param>
    /// <param name="window">…and the last <paramref name="window"/> tokens.</param>
    public HeadMask(bool[,] full, int sink = 128, int window = 1024)
    {
        if (sink < 0 || window < 0) throw new ArgumentOutOfRangeException(nameof(sink), "sink and window must be ≥ 0");
        _full = (bool[,])full.Clone();
        Sink = sink;
        Window = window;
    }

    public int Sink { get; }
    public int Window { get; }
    public int NumLayers => _full.GetLength(0);
    public int NumKvHeads => _full.GetLength(1);
    public string Name => "headmask";
    public bool IsFull(int layer, int kvHead) => _full[layer, kvHead];
    public int StreamingHeads
    {
        get
        {
            int s = 0;
            foreach (bool f in _full) if (!f) s++;
            return s;
        }
    }
    /// <summary>Fraction of (layer, KV head) pairs that are streaming.</summary>
    public double HeadSparsity => (double)StreamingHeads / _full.Length;

    public void Evict(in LayerStep step)
    {
        var cache = step.Cache;
        if (cache.NumLayers != NumLayers || cache.NumKvHeads != NumKvHeads)
            throw new ArgumentException($"head mask is {NumLayers}×{NumKvHeads} but the model has {cache.NumLayers}×{cache.NumKvHeads} (layers × KV heads)");
        for (int h = 0; h < cache.NumKvHeads; h++)
            if (!_full[step.Layer, h]) cache.KeepSinkAndWindow(step.Layer, h, Sink, Window);
    }

    /// <summary>
    /// Reads the PruLong / DuoAttention export: one row per layer, one tab- (or space-) separated
    /// 0/1 column per KV head, 1 = full head. Errors name the file, line and problem.
    /// </summary>
    public static bool[,] LoadTsv(string path, LlamaConfig? config = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"mask file '{path}' does not exist", path);
        var lines = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToArray();
        if (lines.Length == 0) throw new InvalidDataException($"{path}: the mask file is empty");
        int cols = -1;
        var rows = new List<bool[]>();
        for (int r = 0; r < lines.Length; r++)
        {
            var cells = lines[r].Split(['\t', ' ', ','], StringSplitOptions.RemoveEmptyEntries);
            if (cols < 0) cols = cells.Length;
            else if (cells.Length != cols)
                throw new InvalidDataException($"{path}: line {r + 1} has {cells.Length} columns, line 1 has {cols}");
            var row = new bool[cols];
            for (int c = 0; c < cols; c++)
            {
                if (!double.TryParse(cells[c], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || (v != 0 && v != 1))
                    throw new InvalidDataException($"{path}: line {r + 1}, column {c + 1} is '{cells[c]}'; a head mask holds only 0 (streaming) or 1 (full)");
                row[c] = v == 1;
            }
            rows.Add(row);
        }
        if (config is { } cfg && (rows.Count != cfg.NumLayers || cols != cfg.NumKvHeads))
            throw new InvalidDataException($"{path}: mask is {rows.Count} layers × {cols} KV heads, the model has {cfg.NumLayers} × {cfg.NumKvHeads}");
        var mask = new bool[rows.Count, cols];
        for (int r = 0; r < rows.Count; r++) for (int c = 0; c < cols; c++) mask[r, c] = rows[r][c];
        return mask;
    }

    /// <summary>Writes a mask in the same TSV format, atomically.</summary>
    public static void SaveTsv(string path, bool[,] full)
    {
        var sb = new System.Text.StringBuilder();
        for (int r = 0; r < full.GetLength(0); r++)
        {
            for (int c = 0; c < full.GetLength(1); c++) sb.Append(c == 0 ? "" : "\t").Append(full[r, c] ? '1' : '0');
            sb.Append('\n');
        }
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}
