using System.Globalization;
using CsvHelper;
using KvNotebooks.Eviction;
using KvNotebooks.Model;
using KvNotebooks.Validation;

namespace KvNotebooks.Evaluation;

/// <summary>
/// One result row: a (model, method + configuration, context, chunk, task) with its mean score and
/// measured footprint, peak KV (fraction, entries, bytes) and throughput, plus the git commit that
/// produced it, which examples it was scored on (<see cref="ExampleSet"/>) and each example's score
/// (<see cref="ExampleScores"/>, for confidence intervals). The CSV columns are these properties in snake_case.
/// </summary>
public sealed record EvalRow
{
    public string Model { get; init; } = "";
    public string Commit { get; init; } = "";
    public string Method { get; init; } = "";
    public string MethodConfig { get; init; } = "";
    public int Context { get; init; }
    public int Chunk { get; init; }
    public string Task { get; init; } = "";
    public string Category { get; init; } = "";
    public int Examples { get; init; }
    public double Score { get; init; }
    public double Chance { get; init; }
    public double Footprint { get; init; }
    public double PeakKv { get; init; }
    public double PeakKvEntries { get; init; }
    public double PeakKvBytes { get; init; }
    public double PrefillTokensPerSecond { get; init; }
    public double DecodeTokensPerSecond { get; init; }
    public double Seconds { get; init; }
    /// <summary>Which examples: <see cref="FixedSet"/> (the first <see cref="Examples"/> of the fixed set for the
    /// context, data/eval) or "seed:N" (<see cref="SeedSet"/>: generated from seed base N, e.g. the held-out seeds).</summary>
    public string ExampleSet { get; init; } = FixedSet;
    /// <summary>Each example's score in example order; null in rows written before they were recorded (no confidence
    /// interval can be computed for those).</summary>
    public ExampleScores? ExampleScores { get; init; }
    /// <summary>The process's peak resident memory while the row ran, in bytes: weights, activations, KV cache and
    /// runtime (Linux VmHWM, reset before the row; <see cref="Bench.ProcessMemory"/>). Rows run one per process
    /// measure their own; a row run after others in one process can also count memory the runtime kept from them.
    /// Null where it was not measured (rows from before the column, or no /proc).</summary>
    public double? PeakRssBytes { get; init; }

    /// <summary>The <see cref="ExampleSet"/> of rows scored on the fixed evaluation sets.</summary>
    public const string FixedSet = "fixed";
    /// <summary>The <see cref="ExampleSet"/> of rows scored on examples generated from <paramref name="seedBase"/>.</summary>
    public static string SeedSet(int seedBase) => "seed:" + seedBase.ToString(CultureInfo.InvariantCulture);

    /// <summary>What identifies a row for resuming a sweep: finished keys are skipped.</summary>
    public string Key => MakeKey(Model, Method, MethodConfig, Context, Chunk, Task, ExampleSet);

    /// <summary>The <see cref="Key"/> a row with these fields has (a sweep computes it before running). Rows on the
    /// fixed sets keep the key they always had; rows on other examples add their set, so the two never replace each other.</summary>
    public static string MakeKey(string model, string method, string methodConfig, int context, int chunk, string task, string exampleSet = FixedSet) =>
        $"{model}|{method}|{methodConfig}|{context}|{chunk}|{task}" + (exampleSet == FixedSet ? "" : "|" + exampleSet);

    public static readonly string[] Columns =
    [
        "model", "commit", "method", "method_config", "context", "chunk", "task", "category", "examples", "score", "chance",
        "footprint", "peak_kv", "peak_kv_entries", "peak_kv_bytes", "prefill_tokens_per_second", "decode_tokens_per_second", "seconds",
        "example_set", "example_scores", "peak_rss_bytes",
    ];

    /// <summary>Columns a file written before they existed may lack: example_set is then "fixed", example_scores and
    /// peak_rss_bytes empty.</summary>
    public static readonly string[] OptionalColumns = ["example_set", "example_scores", "peak_rss_bytes"];

    private string[] Fields()
    {
        static string D(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        return [Model, Commit, Method, MethodConfig, Context.ToString(CultureInfo.InvariantCulture), Chunk.ToString(CultureInfo.InvariantCulture),
            Task, Category, Examples.ToString(CultureInfo.InvariantCulture), D(Score), D(Chance), D(Footprint), D(PeakKv), D(PeakKvEntries),
            D(PeakKvBytes), D(PrefillTokensPerSecond), D(DecodeTokensPerSecond), D(Seconds), ExampleSet, ExampleScores?.ToString() ?? "",
            PeakRssBytes is { } rss ? D(rss) : ""];
    }

    /// <summary>Writes rows to a CSV file atomically (temp file + rename).</summary>
    public static void Save(string path, IEnumerable<EvalRow> rows)
    {
        var sw = new StringWriter(CultureInfo.InvariantCulture);
        using (var w = CsvWriter.Create(sw, CsvWriterOptions.Default, leaveOpen: true))
        {
            w.WriteRecord(Columns);
            foreach (var r in rows) w.WriteRecord(r.Fields());
            w.Flush();
        }
        AtomicFile.WriteAllText(path, sw.ToString());
    }

    /// <summary>Results files larger than this are refused before reading; one record may hold at most <see cref="MaxRecordBytes"/>.</summary>
    public const long MaxFileBytes = 256 << 20;
    public const int MaxRecordBytes = 1 << 20;

    /// <summary>Reads a CSV written by <see cref="Save"/>. Checked: valid UTF-8, every column once, every row as wide
    /// as the header, numbers in range (scores and chance in [0, 1], counts ≥ 0, nothing NaN), one row per key; the
    /// per-example scores, when given, one per example, each in [0, 1], averaging to the row's score. Files from before
    /// example_set and example_scores load as fixed-set rows without per-example scores, and rows from before the budget
    /// rule was written into method_config are read as what they are (<see cref="MethodSpec.ReadLegacyRule"/>).
    /// Errors are <see cref="InputException"/>s naming the row and column ("row 12.score"). An empty file has no rows.</summary>
    public static List<EvalRow> Load(string path)
    {
        var bytes = InputFile.ReadAllBytes(path, "results", MaxFileBytes);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new InputException(path, "", $"invalid UTF-8 at byte {InputFile.FirstInvalidUtf8(bytes)}");
        var rows = new List<EvalRow>();
        using var r = CsvReader.Create(bytes, new CsvReaderOptions { HasHeader = false, MaxRecordSize = MaxRecordBytes });
        try
        {
            if (!r.Read()) return rows;
            var header = Enumerable.Range(0, r.FieldCount).Select(r.GetString).ToArray();
            var duplicate = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null) throw new InputException(path, "header", $"column '{StrictJson.Printable(duplicate.Key)}' appears twice");
            var missing = Columns.Except(OptionalColumns).Except(header).ToArray();
            if (missing.Length > 0) throw new InputException(path, "header", $"missing columns {string.Join(", ", missing)}");
            var col = Columns.ToDictionary(c => c, c => Array.IndexOf(header, c));
            var keys = new Dictionary<string, long>();
            while (r.Read())
            {
                long line = r.RowNumber;
                string At(string c) => $"row {line}.{c}";
                if (r.FieldCount != header.Length)
                    throw new InputException(path, $"row {line}", $"has {r.FieldCount} fields, the header has {header.Length}");
                string S(string c) => r.GetString(col[c]);
                string Text(string c) => S(c) is { Length: > 0 } t ? t : throw new InputException(path, At(c), "must not be empty");
                int I(string c, int min) => int.TryParse(S(c), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)
                    ? v >= min ? v : throw new InputException(path, At(c), $"must be ≥ {min} (got {v})")
                    : throw new InputException(path, At(c), $"'{StrictJson.Printable(S(c))}' is not an integer");
                double D(string c, double max = double.MaxValue, bool allowInfinity = false)
                {
                    if (!double.TryParse(S(c), NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                        throw new InputException(path, At(c), $"'{StrictJson.Printable(S(c))}' is not a number");
                    if (double.IsNaN(v) || v < 0 || v > max || (double.IsInfinity(v) && !allowInfinity))
                        throw new InputException(path, At(c), $"must be a {(allowInfinity ? "" : "finite ")}number in [0, {(max == double.MaxValue ? "∞" : max)}] (got {S(c)})");
                    return v;
                }
                string? Optional(string c) => col[c] < 0 ? null : S(c);
                var (method, methodConfig) = MethodSpec.ReadLegacyRule(Text("method"), Text("method_config"));
                var row = new EvalRow
                {
                    Model = Text("model"), Commit = S("commit"), Method = method, MethodConfig = methodConfig,
                    Context = I("context", 1), Chunk = I("chunk", 0), Task = Text("task"), Category = S("category"), Examples = I("examples", 0),
                    Score = D("score", 1), Chance = D("chance", 1), Footprint = D("footprint"), PeakKv = D("peak_kv"),
                    PeakKvEntries = D("peak_kv_entries"), PeakKvBytes = D("peak_kv_bytes"),
                    PrefillTokensPerSecond = D("prefill_tokens_per_second", allowInfinity: true),
                    DecodeTokensPerSecond = D("decode_tokens_per_second", allowInfinity: true), Seconds = D("seconds"),
                    ExampleSet = Optional("example_set") is { } set ? CheckSet(set, At("example_set")) : FixedSet,
                    PeakRssBytes = Optional("peak_rss_bytes") is { Length: > 0 } ? D("peak_rss_bytes") : null,
                };
                if (Optional("example_scores") is { Length: > 0 } text)
                {
                    ExampleScores scores;
                    try { scores = ExampleScores.Parse(text); }
                    catch (FormatException e) { throw new InputException(path, At("example_scores"), e.Message); }
                    if (scores.Count != row.Examples)
                        throw new InputException(path, At("example_scores"), $"holds {scores.Count} scores, the row has {row.Examples} examples");
                    if (Math.Abs(scores.Mean - row.Score) > 1e-9)
                        throw new InputException(path, At("example_scores"), $"average {scores.Mean.ToString("R", CultureInfo.InvariantCulture)}, the row's score is {S("score")}");
                    row = row with { ExampleScores = scores };
                }
                if (!keys.TryAdd(row.Key, line))
                    throw new InputException(path, $"row {line}", $"repeats the key of row {keys[row.Key]} ({StrictJson.Printable(row.Key)}): one row per (model, method, config, context, chunk, task, example set)");
                rows.Add(row);
            }
        }
        catch (Exception e) when (e is CsvFormatException or CsvValidationException)
        {
            throw new InputException(path, $"row {r.RowNumber}", $"malformed CSV ({e.Message})", e);
        }
        return rows;

        string CheckSet(string set, string field) =>
            set == FixedSet || (set.StartsWith("seed:", StringComparison.Ordinal)
                                && int.TryParse(set.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int b) && SeedSet(b) == set)
                ? set : throw new InputException(path, field, $"'{StrictJson.Printable(set)}' is neither fixed nor seed:N (N a seed base, no leading zeros)");
    }
}
