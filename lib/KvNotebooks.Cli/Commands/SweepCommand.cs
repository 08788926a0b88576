using System.CommandLine;
using System.Globalization;
using KvNotebooks.Evaluation;
using KvNotebooks.Eviction;
using KvNotebooks.Cache;
using KvNotebooks.Footprint;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Cli.Commands;

/// <summary>
/// <c>kvnb sweep</c>: a grid of methods × schedules × eviction rates × chunk sizes (× bits, windows, GQA
/// layouts) × contexts × tasks, one CSV row per run with its full configuration; resumable (rows already
/// in the CSV are skipped), the CSV rewritten atomically after every row, progress on stderr.
/// </summary>
public static class SweepCommand
{
    public static Command Create(MethodRegistry registry)
    {
        var model = new Option<string>("--model") { Description = "Model folder (Hugging Face layout), e.g. data/models/kvnb-small", Required = true };
        var modelName = new Option<string?>("--model-name") { Description = "The rows' model column (default: the model folder's name)" };
        var methods = new Option<string>("--methods") { Description = $"Methods, comma-separated: {string.Join(" | ", registry.Methods.Select(m => m.Name))}; a score-based one may fix its schedule, e.g. pyramidkv:patched", Required = true };
        var schedules = new Option<string?>("--schedules") { Description = "Schedules for score-based methods named without one: postfill, naive, patched (default: postfill for a single pre-fill, naive when chunked)" };
        var evict = new Option<string?>("--evict") { Description = "Eviction rates p: values and ranges start:end:step, e.g. 0.1:0.9:0.1 or 0.3,0.5,0.7 (default 0.5)" };
        var chunks = new Option<string>("--chunks", "--chunk") { Description = "Pre-fill chunk sizes, e.g. 512,1024 or 512:2048:512; none = a single pre-fill", DefaultValueFactory = _ => "none" };
        var gqa = new Option<string>("--gqa") { Description = "Score-based methods: shared and/or replicated (e.g. shared,replicated)", DefaultValueFactory = _ => "shared" };
        var kvBits = new Option<string?>("--kv-bits") { Description = "Storage for methods that do not choose their own, a list of: full (fp32), fp16, bf16, 2, 4, 8 (codes), e.g. full,fp16,4 (default full)" };
        var kvGroup = new Option<int>("--kv-group-size") { Description = "With --kv-bits: tokens per key group, channels per value group", DefaultValueFactory = _ => 32 };
        var kvResidual = new Option<int>("--kv-residual") { Description = "With --kv-bits: newest tokens kept in full precision", DefaultValueFactory = _ => 128 };
        var contexts = new Option<string>("--contexts", "--context") { Description = "Context lengths, e.g. 2048,4096 (fixed sets in data/eval for 1024, 2048, 4096)", DefaultValueFactory = _ => "4096" };
        var tasks = new Option<string>("--tasks") { Description = "all | categories and task names, comma-separated (e.g. recall,rag,table)", DefaultValueFactory = _ => "all" };
        var examples = new Option<int>("--examples") { Description = "Examples per task (the first N of the fixed set)", DefaultValueFactory = _ => 5 };
        var seed = new Option<int?>("--seed") { Description = "Score examples generated from this seed base instead of the fixed sets; rows carry example_set seed:N and are kept apart from the fixed sets'" };
        var heldOut = new Option<bool>("--held-out") { Description = $"Score the held-out examples (--seed {EvalSet.HeldOutSeed}: a seed base used nowhere in training or design), rows beside the fixed sets'" };
        var evalDir = new Option<string>("--eval-dir") { Description = "Folder of the fixed evaluation sets", DefaultValueFactory = _ => "data/eval" };
        var csv = new Option<string?>("--csv") { Description = "Results CSV: finished rows are skipped, new ones added after each run; FILE.config.json records each invocation" };
        var dryRun = new Option<bool>("--dry-run") { Description = "List the runs (and which are already done) without running them" };
        var threads = new Option<int>("--threads") { Description = "Compute threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var obsWindow = new Option<int>("--obs-window") { Description = "Score-based: observation window k (scoring queries, always-kept KVs, patch length)", DefaultValueFactory = _ => 64 };
        var budgetRule = new Option<string>("--budget-rule") { Description = "accounting (the default: the paper's footprint formula, round((1−p)·c) + window per chunk) | code (the paper's code: int((1−p)·c); rows labelled /code)", DefaultValueFactory = _ => "accounting" };
        var knobs = new KnobListOptions(registry);
        var curve = new Option<string?>("--curve") { Description = "Name of the curve the rows belong to (with one entry in --methods; default: the method and schedule)" };
        var json = Cli.JsonOption();

        var cmd = new Command("sweep", "Evaluate a grid of KV methods and settings on the task suite; one CSV row per (config, context, task), resumable");
        foreach (var o in new Option[] { model, modelName, methods, schedules, evict, chunks, gqa, kvBits, kvGroup, kvResidual, contexts, tasks, examples, seed, heldOut, evalDir, csv,
                     dryRun, threads, obsWindow, budgetRule, curve })
            cmd.Options.Add(o);
        foreach (var (_, o) in knobs.Options) cmd.Options.Add(o);
        cmd.Options.Add(json);

        cmd.SetAction(p => Cli.Run(() =>
        {
            bool Given(Option o) => ScheduleOptions.Given(p, o);
            int t = p.GetValue(threads);
            if (t < 1) throw new ArgumentException($"--threads must be ≥ 1 (got {t})");
            string rule = p.GetValue(budgetRule)!.ToLowerInvariant();
            if (rule is not ("code" or "accounting")) throw new ArgumentException($"--budget-rule must be code or accounting (got '{rule}')");
            if (p.GetValue(seed) is not null && p.GetValue(heldOut)) throw new ArgumentException($"give --seed or --held-out (= --seed {EvalSet.HeldOutSeed}), not both");
            var gqaList = SweepRange.Words(p.GetValue(gqa)!, "--gqa");
            if (gqaList.Any(g => g is not ("shared" or "replicated"))) throw new ArgumentException($"--gqa: each item must be shared or replicated (got '{p.GetValue(gqa)}')");

            var methodList = SweepRange.Words(p.GetValue(methods)!, "--methods");
            var descriptors = methodList.Select(m => registry.Find(m.Split(':')[0]) ?? throw new ArgumentException(
                $"--methods: unknown method '{m.Split(':')[0]}'; choose from {string.Join(", ", registry.Methods.Select(d => d.Name))}")).ToList();
            bool anyScored = descriptors.Any(d => d.Kind == MethodKind.ScoresTokens);
            void Needs(bool ok, Option o, string what)
            {
                if (Given(o) && !ok) throw new ArgumentException($"{o.Name} applies to {what}, and --methods has none");
            }
            Needs(anyScored, evict, "the score-based methods");
            Needs(anyScored, schedules, "the score-based methods");
            Needs(anyScored, gqa, "the score-based methods");
            Needs(descriptors.Any(d => d.Storage is null), kvBits, "methods that do not choose their own storage");
            var kvq = p.GetValue(kvBits) is { } kb
                ? SweepRange.Words(kb, "--kv-bits").Select(w => w switch
                {
                    "full" or "fp32" => null,
                    "fp16" or "bf16" => KvQuantization.Float16(w == "bf16", p.GetValue(kvGroup), Given(kvResidual) ? p.GetValue(kvResidual) : 0),
                    _ => new KvQuantization(int.TryParse(w, out int bits) && bits is 2 or 4 or 8 ? bits
                        : throw new ArgumentException($"--kv-bits: '{w}' is not full, fp16, bf16, 2, 4 or 8"), p.GetValue(kvGroup), p.GetValue(kvResidual)),
                }).ToList()
                : [null];

            var grid = new SweepGrid
            {
                Registry = registry,
                Methods = methodList,
                Schedules = p.GetValue(schedules) is { } s ? SweepRange.Words(s, "--schedules") : [],
                Evicts = p.GetValue(evict) is { } e ? SweepRange.Doubles(e, "--evict") : [0.5],
                Chunks = SweepRange.Ints(p.GetValue(chunks)!, "--chunks", new Dictionary<string, int> { ["none"] = 0, ["single"] = 0 })
                    .Select(c => c == 0 ? Chunking.None : c > 0 ? Chunking.Of(c)
                        : throw new ArgumentException($"--chunks: {c} is not a chunk size (a positive number of tokens, or none for a single pre-fill)")).ToList(),
                Knobs = knobs.Values(p, descriptors),
                Replicated = gqaList.Select(g => g == "replicated").ToList(),
                KvQuantization = kvq,
                Contexts = SweepRange.Ints(p.GetValue(contexts)!, "--contexts"),
                Tasks = TaskSuite.Parse(p.GetValue(tasks)!),
                Examples = p.GetValue(examples),
                SeedBase = p.GetValue(heldOut) ? EvalSet.HeldOutSeed : p.GetValue(seed),
                ObsWindow = p.GetValue(obsWindow),
                AccountingRule = rule == "accounting",
                Curve = p.GetValue(curve) is { } name ? MethodOptions.CheckCurve(name) : null,
            };
            if (grid.Curve is not null && methodList.Count != 1) throw new ArgumentException("--curve names one curve: give one entry in --methods");
            var options = new SweepOptions
            {
                ModelDir = p.GetValue(model)!, ModelName = p.GetValue(modelName), CsvPath = p.GetValue(csv),
                EvalDir = p.GetValue(evalDir)!, Threads = t, CommandLine = "kvnb " + string.Join(' ', p.Tokens.Select(x => Quote(x.Value))),
            };
            bool asJson = p.GetValue(json);
            var config = LlamaConfig.Load(Path.Combine(options.ModelDir, "config.json"));
            var (plan, todo) = Sweep.Pending(grid, options, config);
            foreach (var note in plan.Notes) Console.Error.WriteLine($"kvnb sweep: note: {note}");
            int skipped = plan.Points.Count - todo.Count;
            if (!asJson)
                Console.Error.WriteLine($"kvnb sweep: {plan.Configs.Count} configuration(s) × {grid.Contexts.Count} context(s) × {grid.Tasks.Count} task(s) = " +
                    $"{plan.Points.Count} rows of {grid.Examples} example(s) ({(grid.SeedBase is null ? "fixed sets" : grid.ExampleSet)}); {skipped} already in {options.CsvPath ?? "(no CSV)"}, {todo.Count} to run");
            if (p.GetValue(dryRun))
            {
                var done = plan.Points.Except(todo).ToHashSet();
                if (asJson)
                    Cli.WriteJson(new { planned = plan.Points.Count, skipped, toRun = todo.Count, notes = plan.Notes,
                        points = plan.Points.Select(x => new { method = x.Spec.Label, config = x.Config, context = x.Context, chunk = x.Chunk.Size, task = x.Task.Name, exampleSet = x.ExampleSet, done = done.Contains(x) }) });
                else
                    foreach (var x in plan.Points)
                        Console.WriteLine($"{(done.Contains(x) ? "done" : "todo")}  {x.Context,5}  {x.Task.Name,-10} {x.Spec.Label,-24} {x.Config}");
                return 0;
            }

            bool live = !Console.IsErrorRedirected && !asJson;
            SweepPoint? current = null;
            int exampleNo = 0;
            var result = Sweep.Run(grid, options,
                onRow: asJson ? null : pr =>
                {
                    var r = pr.Row;
                    static string Rss(double? bytes) => bytes is { } b ? string.Create(CultureInfo.InvariantCulture, $"rss {b / (1 << 20),5:F0} MiB  ") : "";
                    if (live) Console.Error.Write("\r" + new string(' ', 100) + "\r");
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"[{pr.Done,4}/{pr.ToRun}] {r.Method,-20} {SweepAnalysis.PointOf(r.MethodConfig),-10} chunk {Chunking.FromColumn(r.Chunk),-5} ctx {r.Context,5} {r.Task,-10} " +
                        $"score {r.Score,5:F3}  footprint {r.Footprint * 100,5:F1}%  peak {r.PeakKv * 100,5:F1}%  {Rss(r.PeakRssBytes)}{r.Seconds,6:F1} s  ETA {Eta(pr.Remaining)}"));
                },
                onExample: live ? (pt, _) =>
                {
                    exampleNo = ReferenceEquals(pt, current) ? exampleNo + 1 : 1;
                    current = pt;
                    Console.Error.Write($"\r  {pt.Spec.Label} {SweepAnalysis.PointOf(pt.Config)} chunk {pt.Chunk} ctx {pt.Context} {pt.Task.Name}: example {exampleNo}/{grid.Examples}   ");
                } : null);
            if (asJson)
                Cli.WriteJson(new { planned = result.Planned, skipped = result.Skipped, ran = result.Ran, csv = options.CsvPath, notes = result.Notes, rows = result.Rows });
            else
            {
                Console.Error.WriteLine($"kvnb sweep: {result.Ran} row(s) run, {result.Skipped} skipped{(options.CsvPath is { } c ? $"; {result.Rows.Count} rows in {c}" : "")}");
                if (options.CsvPath is null)
                    Console.Out.Write(Reports.TableExtensions.ToTable(result.Rows.Select(r => new { r.Method, Config = r.MethodConfig, r.Context, r.Task, r.Score, r.Footprint, r.PeakKv, r.PeakKvBytes })).ToText() + "\n");
            }
            return 0;
        }));
        return cmd;
    }

    private static string Eta(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}" : $"{t.Minutes}:{t.Seconds:00}";

    private static string Quote(string s) => s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "-_.,:/=+".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
