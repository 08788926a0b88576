using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Model;

namespace KvNotebooks.Evaluation;

/// <summary>Where a sweep reads its model and writes its rows.</summary>
public sealed record SweepOptions
{
    /// <summary>Model folder (Hugging Face layout: config.json + model.safetensors).</summary>
    public required string ModelDir { get; init; }
    /// <summary>The model column of the rows (default: the folder's name).</summary>
    public string? ModelName { get; init; }
    /// <summary>Results CSV: rows already there are skipped, new ones are added after every finished row.
    /// Null keeps the rows in memory only.</summary>
    public string? CsvPath { get; init; }
    /// <summary>Folder of the fixed evaluation sets.</summary>
    public string EvalDir { get; init; } = "data/eval";
    /// <summary>Compute threads (0 = every core).</summary>
    public int Threads { get; init; }
    /// <summary>How the sweep was started, recorded in the sidecar (<c>FILE.config.json</c>).</summary>
    public string CommandLine { get; init; } = "";

    public string Name => ModelName ?? Path.GetFileName(Path.GetFullPath(ModelDir).TrimEnd('/', '\\'));
}

/// <summary>After each finished row: rows done of those to run, the row, time so far and an estimate of the rest.</summary>
public sealed record SweepProgress(int Done, int ToRun, int Skipped, EvalRow Row, TimeSpan Elapsed, TimeSpan Remaining);

/// <summary>What a sweep did: every row of its CSV afterwards (or of this run without one), points planned,
/// skipped because finished, and run.</summary>
public sealed record SweepResult(IReadOnlyList<EvalRow> Rows, int Planned, int Skipped, int Ran, IReadOnlyList<string> Notes);

/// <summary>
/// Runs a <see cref="SweepGrid"/> through <see cref="Evaluator"/>, one <see cref="EvalRow"/> per point, and
/// is resumable: a point whose row (same key and example count, with per-example scores) is already in the CSV is skipped, and the
/// CSV is rewritten atomically after every finished row, so a killed sweep loses at most the row it was
/// running. A sidecar <c>FILE.config.json</c> records, per invocation, the command line, model (path,
/// name, SHA-256 of its weights), commit, start and end, and the grid.
/// </summary>
public static class Sweep
{
    /// <summary>The points of <paramref name="grid"/> still to run for this model and CSV (all of them without a CSV).</summary>
    public static (SweepPlan Plan, IReadOnlyList<SweepPoint> ToRun) Pending(SweepGrid grid, SweepOptions options, LlamaConfig config)
    {
        var plan = grid.Expand(config);
        var done = Finished(options.CsvPath, grid.Examples);
        string model = options.Name;
        return (plan, plan.Points.Where(p => !done.Contains(p.Key(model))).ToList());
    }

    /// <summary>Runs every pending point. <paramref name="onRow"/> hears each finished row,
    /// <paramref name="onExample"/> each finished example.</summary>
    public static SweepResult Run(SweepGrid grid, SweepOptions options, Action<SweepProgress>? onRow = null,
        Action<SweepPoint, ExampleResult>? onExample = null, CancellationToken cancel = default)
    {
        using var guard = Lock(options.CsvPath);
        var weights = LlamaWeights.Load(options.ModelDir);
        var (plan, todo) = Pending(grid, options, weights.Config);
        var rows = options.CsvPath is { } csv && File.Exists(csv) ? EvalRow.Load(csv) : [];
        var index = new Dictionary<string, int>();
        for (int i = 0; i < rows.Count; i++) index[rows[i].Key] = i;

        // Nothing to do: the CSV and its sidecar stay as they are.
        if (todo.Count == 0) return new SweepResult(rows, plan.Points.Count, plan.Points.Count, 0, plan.Notes);
        JsonObject? record = null;
        if (options.CsvPath is not null)
        {
            record = SidecarRecord(grid, options, plan, todo.Count);
            AppendSidecar(options.CsvPath, record);
        }

        var model = new LlamaModel(weights, new ComputeContext(options.Threads));
        var sets = new Dictionary<int, EvalSet>();
        double totalCost = todo.Sum(Cost), doneCost = 0;
        var clock = Stopwatch.StartNew();
        int ran = 0;
        try
        {
            foreach (var point in todo)
            {
                cancel.ThrowIfCancellationRequested();
                if (!sets.TryGetValue(point.Context, out var set))
                    sets[point.Context] = set = EvalSet.For(point.ExampleSet, options.EvalDir, grid.Tasks.ToList(), point.Context, grid.Examples);
                var examples = set.For(point.Task.Name).Take(grid.Examples).ToList();
                var row = Evaluator.EvaluateTask(model, options.Name, EvalMethod.For(point.Spec, point.Chunk), point.Chunk, point.Task,
                    examples, onExample is null ? null : r => onExample(point, r), point.ExampleSet);
                if (index.TryGetValue(row.Key, out int at)) rows[at] = row;
                else
                {
                    index[row.Key] = rows.Count;
                    rows.Add(row);
                }
                if (options.CsvPath is not null) EvalRow.Save(options.CsvPath, rows);
                ran++;
                doneCost += Cost(point);
                var elapsed = clock.Elapsed;
                var remaining = TimeSpan.FromSeconds(elapsed.TotalSeconds / doneCost * (totalCost - doneCost));
                onRow?.Invoke(new SweepProgress(ran, todo.Count, plan.Points.Count - todo.Count, row, elapsed, remaining));
            }
        }
        finally
        {
            FinishSidecar(options.CsvPath, record, ran, interrupted: ran < todo.Count);
        }
        return new SweepResult(rows, plan.Points.Count, plan.Points.Count - todo.Count, ran, plan.Notes);
    }

    /// <summary>One sweep per CSV at a time: a second one would overwrite the first one's rows. The lock
    /// (<c>FILE.lock</c>, an exclusive OS lock released when the process ends, however it ends) says so.</summary>
    private static FileStream? Lock(string? csv)
    {
        if (csv is null) return null;
        string path = Path.GetFullPath(csv) + ".lock";
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException)
        {
            throw new IOException($"{csv} is being written by another sweep ({Path.GetFileName(path)} is locked); wait for it or stop it first");
        }
    }

    /// <summary>Keys of the rows in <paramref name="csv"/> that hold <paramref name="examples"/> examples and their
    /// per-example scores (a row from a run with another example count, or written before per-example scores were
    /// recorded, is redone and replaced).</summary>
    private static HashSet<string> Finished(string? csv, int examples) =>
        csv is not null && File.Exists(csv)
            ? EvalRow.Load(csv).Where(r => r.Examples == examples && r.ExampleScores is not null).Select(r => r.Key).ToHashSet()
            : [];

    /// <summary>A relative cost for the time estimate: pre-fill work grows a little faster than linearly
    /// with the context at these lengths (the MLP is linear, attention quadratic).</summary>
    private static double Cost(SweepPoint p) => Math.Pow(p.Context, 1.5);

    // ---- the sidecar ----

    /// <summary>The sidecar of a results CSV: <c>FILE.config.json</c>.</summary>
    public static string SidecarPath(string csvPath) => csvPath + ".config.json";

    private static JsonObject SidecarRecord(SweepGrid grid, SweepOptions o, SweepPlan plan, int toRun)
    {
        static JsonArray Arr<T>(IEnumerable<T> xs) => new(xs.Select(x => JsonValue.Create(x) as JsonNode).ToArray());
        return new JsonObject
        {
            ["command"] = o.CommandLine,
            ["model"] = o.Name,
            ["model_dir"] = Path.GetFullPath(o.ModelDir),
            ["model_sha256"] = WeightsHash(o.ModelDir),
            ["commit"] = GitInfo.Commit(),
            ["started"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["finished"] = null,
            ["machine"] = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}",
            ["grid"] = new JsonObject
            {
                ["methods"] = Arr(grid.Methods),
                ["schedules"] = Arr(grid.Schedules),
                ["evicts"] = Arr(grid.Evicts),
                ["chunks"] = Arr(grid.Chunks.Select(c => c.ToString())),
                ["knobs"] = new JsonObject(grid.Knobs.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Arr(kv.Value.Select(v => v.ToString()!))))),
                ["gqa"] = Arr(grid.Replicated.Select(r => r ? "replicated" : "shared")),
                ["kv_bits"] = Arr(grid.KvQuantization.Select(q => q is null ? "full" : q.Bits.ToString(CultureInfo.InvariantCulture))),
                ["contexts"] = Arr(grid.Contexts),
                ["tasks"] = Arr(grid.Tasks.Select(t => t.Name)),
                ["examples"] = grid.Examples,
                ["example_set"] = grid.ExampleSet,
                ["obs_window"] = grid.ObsWindow,
                ["budget_rule"] = grid.AccountingRule ? "accounting" : "code",
            },
            ["configs"] = Arr(plan.Configs),
            ["notes"] = Arr(plan.Notes),
            ["rows_planned"] = plan.Points.Count,
            ["rows_skipped"] = plan.Points.Count - toRun,
            ["rows_run"] = 0,
        };
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Appends one invocation to the sidecar's <c>runs</c> list (a CSV may be built by several commands).</summary>
    private static void AppendSidecar(string csv, JsonObject record)
    {
        var runs = ReadRuns(csv);
        runs.Add(record);
        AtomicFile.WriteAllText(SidecarPath(csv), new JsonObject { ["runs"] = runs }.ToJsonString(Indented) + "\n");
    }

    private static void FinishSidecar(string? csv, JsonObject? record, int ran, bool interrupted)
    {
        if (csv is null || record is null) return;
        var runs = ReadRuns(csv);
        if (runs.Count == 0) return;
        var last = (JsonObject)runs[^1]!;
        last["finished"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        last["rows_run"] = ran;
        if (interrupted) last["interrupted"] = true;
        AtomicFile.WriteAllText(SidecarPath(csv), new JsonObject { ["runs"] = runs }.ToJsonString(Indented) + "\n");
    }

    private static JsonArray ReadRuns(string csv) => SweepSidecar.Load(SidecarPath(csv));

    /// <summary>SHA-256 of the model's weights file (first 16 hex digits), so a row set names the exact model.</summary>
    public static string WeightsHash(string modelDir)
    {
        string path = Path.Combine(modelDir, "model.safetensors");
        if (!File.Exists(path)) return "";
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f))[..16];
    }
}
