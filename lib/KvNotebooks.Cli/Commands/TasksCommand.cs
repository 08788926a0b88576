using System.CommandLine;
using KvNotebooks.Evaluation;
using KvNotebooks.Tasks;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb tasks list | show | write-eval</c>: the synthetic task suite.</summary>
public static class TasksCommand
{
    public static Command Create()
    {
        var cmd = new Command("tasks", "The synthetic long-context task suite: list the tasks, show an example, write the fixed evaluation sets");
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Show());
        cmd.Subcommands.Add(WriteEval());
        return cmd;
    }

    private static Command List()
    {
        var json = Cli.JsonOption();
        var cmd = new Command("list", "Every task with its HELMET category and metric") { json };
        cmd.SetAction(p => Cli.Run(() =>
        {
            var rows = TaskSuite.All.Select(t => new { t.Name, t.Category, t.Description, ChanceAt4K = t.ChanceScore(4096) }).ToList();
            if (p.GetValue(json)) Cli.WriteJson(rows);
            else
            {
                int width = rows.Max(r => r.Name.Length);
                foreach (var r in rows) Console.WriteLine($"{r.Name.PadRight(width)} {r.Category,-8} {r.Description}");
            }
            return 0;
        }));
        return cmd;
    }

    private static Command Show()
    {
        var task = new Option<string>("--task") { Description = "Task name (kvnb tasks list)", Required = true };
        var length = new Option<int>("--length") { Description = "Tokens", DefaultValueFactory = _ => 256 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var ids = new Option<bool>("--ids") { Description = "Print token ids instead of words" };
        var cmd = new Command("show", "Print one example: the prompt and the gold answer") { task, length, seed, ids };
        cmd.SetAction(p => Cli.Run(() =>
        {
            var t = TaskSuite.Get(p.GetValue(task)!);
            var ex = t.Generate(p.GetValue(seed), p.GetValue(length));
            var v = Vocabulary.Default;
            string Text(IEnumerable<int> x) => p.GetValue(ids) ? string.Join(' ', x) : v.Text(x);
            if (ex.Questions.Length == 0)
            {
                Console.WriteLine(Text(ex.Context));
                return 0;
            }
            Console.WriteLine(Text(ex.Prompt()));
            Console.WriteLine($"==> {Text(ex.Questions[0].Answer)}");
            return 0;
        }));
        return cmd;
    }

    private static Command WriteEval()
    {
        var output = new Option<string>("--out") { Description = "Folder", DefaultValueFactory = _ => "data/eval" };
        var lengths = new Option<string>("--lengths") { Description = "Context lengths, comma-separated", DefaultValueFactory = _ => "1024,2048,4096" };
        var examples = new Option<int>("--examples") { Description = "Examples per task and length", DefaultValueFactory = _ => 20 };
        var cmd = new Command("write-eval", "Generate the fixed evaluation sets (gzip JSON lines of token ids) from their fixed seeds") { output, lengths, examples };
        cmd.SetAction(p => Cli.Run(() =>
        {
            int n = p.GetValue(examples);
            if (n < 1) throw new ArgumentException("--examples must be ≥ 1");
            foreach (var part in p.GetValue(lengths)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!int.TryParse(part, out int L) || L < 128) throw new ArgumentException($"--lengths: '{part}' is not a length ≥ 128");
                var set = EvalSet.Create(TaskSuite.Scored, L, n);
                string path = Path.Combine(p.GetValue(output)!, EvalSet.FileName(L));
                set.Save(path);
                Console.WriteLine($"wrote {set.Examples.Count} examples ({n} per task) of {L} tokens to {path} ({new FileInfo(path).Length:N0} bytes)");
            }
            return 0;
        }));
        return cmd;
    }
}
