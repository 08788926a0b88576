using System.CommandLine;
using System.Text.Json;
using KvNotebooks.Evaluation;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb eval</c>: task scores with the measured footprint, peak KV and throughput, one CSV row per task.</summary>
public static class EvalCommand
{
    public static Command Create(MethodRegistry registry)
    {
        var model = new Option<string>("--model") { Description = "Model folder (Hugging Face layout), e.g. data/models/kvnb-small", Required = true };
        var tasks = new Option<string>("--tasks") { Description = "all | categories and task names, comma-separated (e.g. recall,rag,table)", DefaultValueFactory = _ => "all" };
        var context = new Option<int>("--context") { Description = "Context length in tokens (the fixed sets in data/eval are used when they exist; 2048 is our model's evaluation context)", DefaultValueFactory = _ => 2048 };
        var examples = new Option<int>("--examples") { Description = "Examples per task", DefaultValueFactory = _ => 20 };
        var evalDir = new Option<string>("--eval-dir") { Description = "Folder of the fixed evaluation sets", DefaultValueFactory = _ => "data/eval" };
        var seed = new Option<int?>("--seed") { Description = "Generate the examples from this seed base instead of using the fixed sets (the fixed sets use 77000000); rows carry example_set seed:N and are kept apart from the fixed sets'" };
        var heldOut = new Option<bool>("--held-out") { Description = $"Score the held-out examples: --seed {EvalSet.HeldOutSeed}, a seed base used nowhere in training or design" };
        var csv = new Option<string?>("--csv") { Description = "Append the rows to this CSV (rows already there for the same model, method, config, context, chunk, task and example set are replaced)" };
        var answers = new Option<string?>("--answers") { Description = "Also write every example's generated answer next to the gold one to this file (JSON lines: task, seed, context, score, gold, generated, as words and as token ids), for error analysis" };
        var threads = new Option<int>("--threads") { Description = "Compute threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = Cli.JsonOption();
        var methodOptions = new MethodOptions(registry);
        var cmd = new Command("eval", "Score the model on the task suite under a KV method, with measured footprint and memory") { model, tasks, context, examples, evalDir, seed, heldOut, csv, answers, threads };
        methodOptions.AddTo(cmd);
        cmd.Options.Add(json);
        cmd.SetAction(p => Cli.Run(() =>
        {
            int n = p.GetValue(examples), length = p.GetValue(context);
            if (n < 1) throw new ArgumentException("--examples must be ≥ 1");
            if (length < 128) throw new ArgumentException("--context must be ≥ 128");
            if (p.GetValue(seed) is not null && p.GetValue(heldOut)) throw new ArgumentException($"give --seed or --held-out (= --seed {EvalSet.HeldOutSeed}), not both");
            int? seedBase = p.GetValue(heldOut) ? EvalSet.HeldOutSeed : p.GetValue(seed);
            if (seedBase is < 0) throw new ArgumentException($"--seed must be ≥ 0 (got {seedBase})");
            string exampleSet = seedBase is { } sb ? EvalRow.SeedSet(sb) : EvalRow.FixedSet;
            if (p.GetValue(threads) is var t && t < 1) throw new ArgumentException($"--threads must be ≥ 1 (got {t})");
            string dir = p.GetValue(model)!;
            var weights = LlamaWeights.Load(dir);
            var llama = new LlamaModel(weights, new ComputeContext(p.GetValue(threads)));
            var chunk = methodOptions.Chunking(p);
            var spec = methodOptions.Spec(p, chunked: !chunk.IsNone);
            spec.Create(weights.Config); // validates the options once
            var method = EvalMethod.For(spec, chunk);
            var taskList = TaskSuite.Parse(p.GetValue(tasks)!);
            var set = EvalSet.For(exampleSet, p.GetValue(evalDir)!, taskList, length, n);
            bool asJson = p.GetValue(json);
            var rows = new List<EvalRow>();
            string? answersPath = p.GetValue(answers);
            var answerLines = answersPath is null ? null : new List<string>();
            int done = 0, total = taskList.Count * n;
            foreach (var task in taskList)
            {
                var exs = set.For(task.Name).Take(n).ToList();
                int i = 0;
                rows.Add(Evaluator.EvaluateTask(llama, Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')), method, chunk, task, exs, r =>
                {
                    answerLines?.Add(AnswerLine(exs[i++], r));
                    if (!asJson) Progress(++done, total, task.Name);
                }, exampleSet));
            }
            if (answerLines is not null) AtomicFile.WriteAllText(answersPath!, string.Concat(answerLines.Select(l => l + "\n")));
            if (!asJson && !Console.IsErrorRedirected) Console.Error.WriteLine();
            if (p.GetValue(csv) is { } path)
            {
                var keys = rows.Select(r => r.Key).ToHashSet();
                var old = File.Exists(path) ? EvalRow.Load(path).Where(r => !keys.Contains(r.Key)) : [];
                EvalRow.Save(path, old.Concat(rows));
            }
            if (asJson)
                Cli.WriteJson(new
                {
                    rows,
                    tasks = rows.Select(r => new { r.Task, r.Score, Ci = Ci(Statistics.Mean(r.ExampleScores!)) }),
                    categories = Evaluator.Categories(rows).Select(c => new
                    {
                        c.Category, c.Score, c.Footprint,
                        Ci = Ci(Statistics.CategoryMean(rows.Where(r => r.Category == c.Category).Select(r => (IReadOnlyList<double>)r.ExampleScores!).ToList())),
                    }),
                });
            else Print(rows);
            return 0;
        }));
        return cmd;
    }

    /// <summary>One line of <c>--answers</c>: the example's gold answer (its first question's, the one scored)
    /// and what the model generated.</summary>
    private static string AnswerLine(TaskExample ex, ExampleResult r)
    {
        if (r.Seed != ex.Seed || r.Task != ex.Task) throw new InvalidOperationException($"answer of {r.Task} seed {r.Seed} paired with example {ex.Task} seed {ex.Seed}");
        var gold = ex.Questions[0].Answer;
        var v = Vocabulary.Default;
        return JsonSerializer.Serialize(new
        {
            task = ex.Task, seed = ex.Seed, context = ex.Length, score = r.Score,
            gold = v.Text(gold), generated = v.Text(r.Generated), gold_ids = gold, generated_ids = r.Generated,
        });
    }

    private static void Progress(int done, int total, string task)
    {
        if (Console.IsErrorRedirected) // a log file: one line per finished task
        {
            if (done == total || done % Math.Max(1, total / 10) == 0) Console.Error.WriteLine($"  {done}/{total} examples ({task})");
            return;
        }
        const int width = 30;
        int filled = (int)((long)done * width / total);
        Console.Error.Write($"\r  [{new string('#', filled)}{new string('-', width - filled)}] {done}/{total} {task,-10}");
    }

    /// <summary>A 95 % interval as JSON: lo, hi, standard error (null without an interval).</summary>
    private static object? Ci(Estimate e) => e.HasInterval ? new { lo = e.Lo, hi = e.Hi, se = e.StandardError } : null;

    private static void Print(IReadOnlyList<EvalRow> rows)
    {
        if (rows.Count > 0 && rows[0].ExampleSet != EvalRow.FixedSet) Console.WriteLine($"examples: {rows[0].ExampleSet} (not the fixed sets)");
        Console.WriteLine($"{"task",-10} {"category",-8} {"score [95% CI]",-20} {"chance",7} {"footprint",9} {"peak KV",8} {"peak bytes",12} {"prefill tok/s",13}");
        foreach (var r in rows)
            Console.WriteLine($"{r.Task,-10} {r.Category,-8} {Statistics.Mean(r.ExampleScores!).ToPercent(),-20} {r.Chance,7:P1} {r.Footprint,9:P1} {r.PeakKv,8:P1} {r.PeakKvBytes,12:N0} {r.PrefillTokensPerSecond,13:N0}");
        Console.WriteLine();
        foreach (var (c, s, f) in Evaluator.Categories(rows))
        {
            var ci = Statistics.CategoryMean(rows.Where(r => r.Category == c).Select(r => (IReadOnlyList<double>)r.ExampleScores!).ToList());
            Console.WriteLine($"{c,-8} score {ci.ToPercent(),-20} (SE {ci.StandardError * 100:F1} points)   footprint {f,6:P1}");
        }
    }
}
