using System.Globalization;
using CsvHelper;
using KvNotebooks.Model;

namespace KvNotebooks.Evaluation;

/// <summary>
/// One result row: a (model, method + configuration, context, chunk, task) with its mean score and
/// measured footprint, peak KV (fraction, entries, bytes) and throughput, plus the git commit that
/// produced it. The CSV columns are these properties in snake_case.
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

    /// <summary>What identifies a row for resuming a sweep: finished keys are skipped.</summary>
    public string Key => MakeKey(Model, Method, MethodConfig, Context, Chunk, Task);

    /// <summary>The <see cref="Key"/> a row with these fields has (a sweep computes it before running).</summary>
    public static string MakeKey(string model, string method, string methodConfig, int context, int chunk, string task) =>
        $"{model}|{method}|{methodConfig}|{context}|{chunk}|{task}";

    public static readonly string[] Columns =
    [
        "model", "commit", "method", "method_config", "context", "chunk", "task", "category", "examples", "score", "chance",
        "footprint", "peak_kv", "peak_kv_entries", "peak_kv_bytes", "prefill_tokens_per_second", "decode_tokens_per_second", "seconds",
    ];

    private string[] Fields()
    {
        static string D(double x) => x.ToString("R", CultureInfo.InvariantCulture);
        return [Model, Commit, Method, MethodConfig, Context.ToString(CultureInfo.InvariantCulture), Chunk.ToString(CultureInfo.InvariantCulture),
            Task, Category, Examples.ToString(CultureInfo.InvariantCulture), D(Score), D(Chance), D(Footprint), D(PeakKv), D(PeakKvEntries),
            D(PeakKvBytes), D(PrefillTokensPerSecond), D(DecodeTokensPerSecond), D(Seconds)];
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

    /// <summary>Reads a CSV written by <see cref="Save"/>; errors name the file, line and column.</summary>
    public static List<EvalRow> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"results file '{path}' does not exist", path);
        var rows = new List<EvalRow>();
        using var r = CsvReader.FromFile(path, new CsvReaderOptions { HasHeader = false });
        if (!r.Read()) return rows;
        var header = Enumerable.Range(0, r.FieldCount).Select(r.GetString).ToArray();
        var missing = Columns.Except(header).ToArray();
        if (missing.Length > 0) throw new InvalidDataException($"{path}: missing columns {string.Join(", ", missing)}");
        int Col(string name) => Array.IndexOf(header, name);
        while (r.Read())
        {
            long line = r.RowNumber;
            string S(string c) => r.GetString(Col(c));
            int I(string c) => int.TryParse(S(c), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
                : throw new InvalidDataException($"{path}: row {line}, column {c}: '{S(c)}' is not an integer");
            double D(string c) => double.TryParse(S(c), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
                : throw new InvalidDataException($"{path}: row {line}, column {c}: '{S(c)}' is not a number");
            rows.Add(new EvalRow
            {
                Model = S("model"), Commit = S("commit"), Method = S("method"), MethodConfig = S("method_config"),
                Context = I("context"), Chunk = I("chunk"), Task = S("task"), Category = S("category"), Examples = I("examples"),
                Score = D("score"), Chance = D("chance"), Footprint = D("footprint"), PeakKv = D("peak_kv"),
                PeakKvEntries = D("peak_kv_entries"), PeakKvBytes = D("peak_kv_bytes"),
                PrefillTokensPerSecond = D("prefill_tokens_per_second"), DecodeTokensPerSecond = D("decode_tokens_per_second"), Seconds = D("seconds"),
            });
        }
        return rows;
    }
}
