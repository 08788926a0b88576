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
        var seed = new Option<int?>("--seed") { Description = "Generate the examples from this seed base instead of using the fixed sets: a held-out check on examples that no choice of model has seen (the fixed sets use 77000000)" };
        var csv = new Option<string?>("--csv") { Description = "Append the rows to this CSV (rows already there for the same model, method, config, context, chunk and task are replaced)" };
        var answers = new Option<string?>("--answers") { Description = "Also write every example's generated answer next to the gold one to this file (JSON lines: task, seed, context, score, gold, generated, as words and as token ids), for error analysis" };
        var threads = new Option<int>("--threads") { Description = "Compute threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = Cli.JsonOption();
        var methodOptions = new MethodOptions(registry);
        var cmd = new Command("eval", "Score the model on the task suite under a KV method, with measured footprint and memory") { model, tasks, context, examples, evalDir, seed, csv, answers, threads };
        methodOptions.AddTo(cmd);
        cmd.Options.Add(json);
        cmd.SetAction(p => Cli.Run(() =>
        {
            int n = p.GetValue(examples), length = p.GetValue(context);
            if (n < 1) throw new ArgumentException("--examples must be ≥ 1");
            if (length < 128) throw new ArgumentException("--context must be ≥ 128");
            if (p.GetValue(seed) is not null && p.GetValue(csv) is not null)
                throw new ArgumentException("--seed with --csv would put scores on other examples in rows keyed like the fixed sets'; print them (or --json) instead");
            if (p.GetValue(threads) is var t && t < 1) throw new ArgumentException($"--threads must be ≥ 1 (got {t})");
            string dir = p.GetValue(model)!;
            var weights = LlamaWeights.Load(dir);
            var llama = new LlamaModel(weights, new ComputeContext(p.GetValue(threads)));
            var chunk = methodOptions.Chunking(p);
            var spec = methodOptions.Spec(p, chunked: !chunk.IsNone);
            spec.Create(weights.Config); // validates the options once
            var method = EvalMethod.For(spec, chunk);
            var taskList = TaskSuite.Parse(p.GetValue(tasks)!);
            var set = p.GetValue(seed) is { } s
                ? EvalSet.Create(taskList, length, n, s)
                : EvalSet.LoadOrCreate(p.GetValue(evalDir)!, taskList, length, n);
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
                }));
            }
            if (answerLines is not null) AtomicFile.WriteAllText(answersPath!, string.Concat(answerLines.Select(l => l + "\n")));
            if (!asJson && !Console.IsErrorRedirected) Console.Error.WriteLine();
            if (p.GetValue(csv) is { } path)
            {
                var keys = rows.Select(r => r.Key).ToHashSet();
                var old = File.Exists(path) ? EvalRow.Load(path).Where(r => !keys.Contains(r.Key)) : [];
                EvalRow.Save(path, old.Concat(rows));
            }
            if (asJson) Cli.WriteJson(new { rows, categories = Evaluator.Categories(rows).Select(c => new { c.Category, c.Score, c.Footprint }) });
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

    private static void Print(IReadOnlyList<EvalRow> rows)
    {
        Console.WriteLine($"{"task",-10} {"category",-8} {"score",7} {"chance",7} {"footprint",9} {"peak KV",8} {"peak bytes",12} {"prefill tok/s",13}");
        foreach (var r in rows)
            Console.WriteLine($"{r.Task,-10} {r.Category,-8} {r.Score,7:P1} {r.Chance,7:P1} {r.Footprint,9:P1} {r.PeakKv,8:P1} {r.PeakKvBytes,12:N0} {r.PrefillTokensPerSecond,13:N0}");
        Console.WriteLine();
        foreach (var (c, s, f) in Evaluator.Categories(rows)) Console.WriteLine($"{c,-8} score {s,6:P1}   footprint {f,6:P1}");
    }
}
