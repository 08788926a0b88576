using System.CommandLine;
using KvNotebooks.Evaluation;
using KvNotebooks.Model;
using KvNotebooks.Tasks;
using KvNotebooks.Training;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.Cli.Commands;

/// <summary>
/// <c>kvnb probe</c>: the training log's teacher-forced accuracy on as many examples as asked, for judging a
/// training run (or a shipped model) quickly: one forward pass per example, no decoding, with the standard
/// error of each share, since 8 examples (the log's) are ±17 points.
/// </summary>
public static class ProbeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder (Hugging Face layout), e.g. data/models/kvnb-small or a run's model/", Required = true };
        var tasks = new Option<string>("--tasks") { Description = "all | categories and task names, comma-separated", DefaultValueFactory = _ => "recall" };
        var lengths = new Option<string>("--lengths") { Description = "Context lengths, e.g. 512,1024,2048 or 256:2048:256", DefaultValueFactory = _ => "512,1024,2048" };
        var examples = new Option<int>("--examples") { Description = "Examples per task and length (generated; seeds 2,000,000 + i, apart from the training log's)", DefaultValueFactory = _ => 64 };
        var threads = new Option<int>("--threads") { Description = "Compute threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cmd = new Command("probe", "Teacher-forced accuracy per task and length: the share of examples whose every answer token is the argmax, and of answer tokens right") { model, tasks, lengths, examples, threads };
        cmd.SetAction(p => Cli.Run(() =>
        {
            int n = p.GetValue(examples);
            if (n < 1) throw new ArgumentException("--examples must be ≥ 1");
            if (p.GetValue(threads) is var t && t < 1) throw new ArgumentException($"--threads must be ≥ 1 (got {t})");
            var lens = SweepRange.Ints(p.GetValue(lengths)!, "--lengths");
            if (lens.FirstOrDefault(l => l < 1, 1) is var bad && bad < 1) throw new ArgumentException($"--lengths: {bad} is not a positive token count");
            var taskList = TaskSuite.Parse(p.GetValue(tasks)!);
            var trainable = new TrainableLlama(LlamaWeights.Load(p.GetValue(model)!), new ComputeContext(p.GetValue(threads)));
            Console.WriteLine($"{"task",-10} {"length",6} {"exact",8} {"± s.e.",7} {"tokens",8}");
            foreach (var task in taskList)
                foreach (int length in lens)
                {
                    if (length < task.MinLength) { Console.WriteLine($"{task.Name,-10} {length,6}   (needs ≥ {task.MinLength} tokens)"); continue; }
                    var r = TeacherForced.Evaluate(trainable, task, length, n, seedBase: 2_000_000);
                    double se = Math.Sqrt(r.Exact * (1 - r.Exact) / n);
                    Console.WriteLine($"{task.Name,-10} {length,6} {r.Exact * 100,7:F1}% {se * 100,6:F1} {r.TokenAccuracy * 100,7:F1}%");
                }
            return 0;
        }));
        return cmd;
    }
}
