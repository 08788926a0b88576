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
    /// Reads a 0/1 head mask (PruLong's and DuoAttention's export; any scores TSV whose values are all 0 or 1): one row per
    /// layer, one tab- (or space-) separated column per KV head, 1 = full head. Read by <see cref="HeadMasks.HeadScores.Load"/>,
    /// so errors are <see cref="Validation.InputException"/>s naming the file, line, column and rule.
    /// </summary>
    public static bool[,] LoadTsv(string path, LlamaConfig? config = null)
    {
        var scores = HeadMasks.HeadScores.Load(path, config);
        var mask = new bool[scores.NumLayers, scores.NumKvHeads];
        for (int l = 0; l < scores.NumLayers; l++)
            for (int h = 0; h < scores.NumKvHeads; h++)
            {
                double v = scores[l, h];
                if (v != 0 && v != 1)
                    throw new Validation.InputException(path, $"line {l + 1}.column {h + 1}",
                        $"{v.ToString(CultureInfo.InvariantCulture)}: a head mask holds only 0 (streaming) or 1 (full); continuous scores go to --method duo or prulong with --head-sparsity");
                mask[l, h] = v == 1;
            }
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
