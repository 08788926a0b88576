using System.Globalization;
using System.Text;
using KvNotebooks.Model;

namespace KvNotebooks.HeadMasks;

/// <summary>How <see cref="HeadScores.Binarize"/> breaks ties among equal scores.</summary>
public enum TieBreak
{
    /// <summary>DuoAttention's <c>sparsify_attention_heads</c>: add seeded uniform noise in [0, 1e-6) to every score,
    /// then the lowest become streaming heads.</summary>
    Duo,
    /// <summary>PruLong's <c>save_prulong_masks.py</c>: rank by score, equal scores ordered by a seeded random key
    /// drawn per head in layer-major order; the highest become full heads.</summary>
    PruLong,
}

/// <summary>
/// A learned head mask in its continuous form: one finite real per (layer, KV head), higher = more important = kept as
/// a full head. DuoAttention stores its gates α ∈ [0, 1], PruLong the code's deterministic mask values; a 0/1 mask is a
/// special case. <see cref="Binarize"/> turns it into a full-head mask at any head sparsity.
/// File format (<see cref="Load"/>, <see cref="Save"/>): a TSV, one line per layer, one tab-separated column per KV head,
/// numbers in invariant culture (spaces or commas also separate on reading; blank lines are skipped).
/// </summary>
public sealed class HeadScores
{
    /// <summary>Duo's tie-breaking noise: U(0, 1e-6).</summary>
    public const double DuoNoise = 1e-6;
    /// <summary>The seed save_prulong_masks.py uses (42), our default for both rules.</summary>
    public const int DefaultSeed = 42;

    private readonly double[,] _values;

    /// <param name="values">[layers, KV heads], every value finite.</param>
    public HeadScores(double[,] values, string source = "head scores")
    {
        if (values.GetLength(0) == 0 || values.GetLength(1) == 0) throw new ArgumentException($"{source}: no heads");
        for (int l = 0; l < values.GetLength(0); l++)
            for (int h = 0; h < values.GetLength(1); h++)
                if (!double.IsFinite(values[l, h])) throw new ArgumentException($"{source}: layer {l}, KV head {h} is {values[l, h]}; scores must be finite");
        _values = (double[,])values.Clone();
        Source = source;
    }

    /// <summary>A 0/1 mask as scores (1 = full).</summary>
    public static HeadScores FromMask(bool[,] full, string source = "mask")
    {
        var v = new double[full.GetLength(0), full.GetLength(1)];
        for (int l = 0; l < v.GetLength(0); l++) for (int h = 0; h < v.GetLength(1); h++) v[l, h] = full[l, h] ? 1 : 0;
        return new HeadScores(v, source);
    }

    /// <summary>Where the scores came from (a file path), for messages.</summary>
    public string Source { get; }
    public int NumLayers => _values.GetLength(0);
    public int NumKvHeads => _values.GetLength(1);
    public int Count => _values.Length;
    public double this[int layer, int kvHead] => _values[layer, kvHead];

    /// <summary>Streaming heads at head sparsity s: round(s · heads) (s·heads first rounded to 1e-9, so that
    /// 0.7 · 24 = 16.8 is 17 and float noise never flips a half).</summary>
    public static int StreamingCount(double sparsity, int heads)
    {
        if (!(sparsity >= 0 && sparsity <= 1)) throw new ArgumentOutOfRangeException(nameof(sparsity), sparsity, "head sparsity must be in [0, 1]");
        return (int)Math.Round(Math.Round(sparsity * heads, 9), MidpointRounding.ToEven);
    }

    /// <summary>[layers, KV heads] with true = full head: exactly <see cref="StreamingCount"/>(s, heads) heads, those with
    /// the lowest scores, become streaming; ties broken reproducibly by <paramref name="rule"/> and <paramref name="seed"/>.</summary>
    public bool[,] Binarize(double sparsity, TieBreak rule, int seed = DefaultSeed)
    {
        int n = Count, L = NumLayers, H = NumKvHeads;
        int streaming = StreamingCount(sparsity, n);
        var order = Ranking(rule, seed);
        var full = new bool[L, H];
        for (int r = streaming; r < n; r++) full[order[r] / H, order[r] % H] = true;
        return full;
    }

    /// <summary>Head indices (layer · KvHeads + head) from least to most important under the rule's tie-breaking.</summary>
    public int[] Ranking(TieBreak rule, int seed = DefaultSeed)
    {
        int n = Count, H = NumKvHeads;
        var rng = new Random(seed);
        var idx = Enumerable.Range(0, n).ToArray();
        if (rule == TieBreak.Duo)
        {
            // sparsify_attention_heads: scores + U(0, 1e-6), layer-major order of draws; lowest first
            var noisy = new double[n];
            for (int i = 0; i < n; i++) noisy[i] = _values[i / H, i % H] + rng.NextDouble() * DuoNoise;
            return idx.OrderBy(i => noisy[i]).ThenBy(i => i).ToArray();
        }
        // round_masks_for_sparsity: one random key per head, sort by it, then (stably) by value, highest first
        var key = new double[n];
        for (int i = 0; i < n; i++) key[i] = rng.NextDouble();
        var best = idx.OrderByDescending(i => _values[i / H, i % H]).ThenBy(i => key[i]).ThenBy(i => i).ToArray();
        Array.Reverse(best);
        return best;
    }

    /// <summary>Largest scores file read (a model of 1,024 layers × 4,096 KV heads at 20 characters a score is 80 MB).</summary>
    public const long MaxFileBytes = 128 << 20;

    /// <summary>Reads a scores TSV through the validation layer: every error is an <see cref="Validation.InputException"/>
    /// naming the file, the line and column and the rule (empty file, ragged rows, a cell that is not a number, NaN or
    /// infinity, more lines or columns than the model has — checked before anything larger is allocated).</summary>
    public static HeadScores Load(string path, LlamaConfig? config = null)
    {
        string text = Validation.InputFile.ReadAllText(path, "head scores", MaxFileBytes);
        var rows = new List<double[]>();
        int cols = -1, firstLine = 0, lineNo = 0;
        foreach (var line in text.Split('\n'))
        {
            lineNo++;
            if (line.Trim().Length == 0) continue;
            var cells = line.Split(['\t', ' ', ',', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (cols < 0) { cols = cells.Length; firstLine = lineNo; }
            else if (cells.Length != cols)
                throw new Validation.InputException(path, $"line {lineNo}", $"{cells.Length} columns, line {firstLine} has {cols} (one column per KV head on every line)");
            if (config is { } c && (cols != c.NumKvHeads || rows.Count >= c.NumLayers))
                throw new Validation.InputException(path, $"line {lineNo}", cols != c.NumKvHeads
                    ? $"{cols} columns, the model has {c.NumKvHeads} KV heads"
                    : $"more lines than the model's {c.NumLayers} layers");
            var row = new double[cols];
            for (int col = 0; col < cols; col++)
            {
                if (!double.TryParse(cells[col], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                    throw new Validation.InputException(path, $"line {lineNo}.column {col + 1}", $"'{Clip(cells[col])}' is not a number");
                if (!double.IsFinite(v))
                    throw new Validation.InputException(path, $"line {lineNo}.column {col + 1}", $"{Clip(cells[col])}: head scores must be finite");
                row[col] = v;
            }
            rows.Add(row);
        }
        if (rows.Count == 0) throw new Validation.InputException(path, "", "the file is empty (expected one line of KV-head scores per layer)");
        if (config is { } cfg && rows.Count != cfg.NumLayers)
            throw new Validation.InputException(path, "", $"{rows.Count} layers × {cols} KV heads, the model has {cfg.NumLayers} layers × {cfg.NumKvHeads} KV heads");
        var values = new double[rows.Count, cols];
        for (int l = 0; l < rows.Count; l++) for (int h = 0; h < cols; h++) values[l, h] = rows[l][h];
        return new HeadScores(values, path);
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    /// <summary>Writes the TSV atomically, each value in the shortest form that reads back to the same double.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToTsv(_values));

    /// <summary>A 0/1 TSV of a full-head mask (1 = full), the format of PruLong's export and of the headmask method.</summary>
    public static void SaveMask(string path, bool[,] full) => FromMask(full).Save(path);

    private static string ToTsv(double[,] v)
    {
        var sb = new StringBuilder();
        for (int l = 0; l < v.GetLength(0); l++)
        {
            for (int h = 0; h < v.GetLength(1); h++) sb.Append(h == 0 ? "" : "\t").Append(v[l, h].ToString("R", CultureInfo.InvariantCulture));
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
