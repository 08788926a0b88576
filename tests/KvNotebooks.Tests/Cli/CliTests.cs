using System.Text.Json;
using KvNotebooks.Cli;
using KvNotebooks.Footprint;

namespace KvNotebooks.Tests.Cli;

[Collection(KvNotebooks.Tests.Notebooks.NotebookCollection.Name)]
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-cli").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Runs kvnb in this process with the console captured (tests in this collection share the console).</summary>
    internal static (int code, string stdout, string stderr) Kvnb(params string[] args) => Invoke(null, args);

    /// <summary>The same with <paramref name="registry"/>'s methods (null: the built-in ones).</summary>
    internal static (int code, string stdout, string stderr) Invoke(KvNotebooks.Eviction.MethodRegistry? registry, string[] args)
    {
        var (o, e) = (Console.Out, Console.Error);
        var (so, se) = (new StringWriter(), new StringWriter());
        Console.SetOut(so);
        Console.SetError(se);
        try { return (Program.Run(args, registry), so.ToString(), se.ToString()); }
        finally { Console.SetOut(o); Console.SetError(e); }
    }

    [Fact]
    public void FootprintJsonMatchesTheLibrary()
    {
        var (code, stdout, _) = Kvnb("footprint", "--method", "prulong", "--head-sparsity", "0.7", "--prompt-tokens", "131072", "--gen-tokens", "100", "--json");
        Assert.Equal(0, code);
        var json = JsonDocument.Parse(stdout).RootElement;
        var expected = KvFootprint.Duo(new ChunkPlan(131072, 32768), 100, 0.7, 128, 1024);
        Assert.Equal(expected.Footprint, json.GetProperty("footprint").GetDouble(), 12);
        Assert.Equal(expected.PeakKv, json.GetProperty("peakKv").GetDouble(), 12);
    }

    [Fact]
    public void BenchTrainReportsSpeedAndBreakdown()
    {
        string cfg = Path.Combine(_dir, "config.json");
        KvNotebooks.Tests.Inference.TinyModels.Config().Save(cfg);
        string model = Path.Combine(_dir, "m");
        Assert.Equal(0, Kvnb("init", "--config", cfg, "--seed", "3", "--out", model).code);
        var (code, stdout, _) = Kvnb("bench", "train", "--model", model, "--tokens", "40", "--batch", "2", "--threads", "1",
                                     "--repeats", "1", "--optimizer", "--breakdown", "--json");
        Assert.Equal(0, code);
        var root = JsonDocument.Parse(stdout).RootElement;
        Assert.False(root.GetProperty("fullPass").GetProperty("lossRowsPath").GetBoolean());
        Assert.True(root.GetProperty("speedup").GetDouble() > 0);
        var r = root.GetProperty("lossRows");
        Assert.Equal(40, r.GetProperty("seqLen").GetInt32());
        Assert.Equal(2, r.GetProperty("batch").GetInt32());
        Assert.True(r.GetProperty("optimizerStep").GetBoolean());
        Assert.True(r.GetProperty("tokensPerSecond").GetDouble() > 0);
        Assert.True(r.GetProperty("peakGflops").GetDouble() > 0);
        var ops = r.GetProperty("breakdown").EnumerateArray().Select(o => o.GetProperty("op").GetString()).ToList();
        Assert.Contains("fwd attention", ops); Assert.Contains("bwd linear", ops); Assert.Contains("adamw", ops);
    }

    [Theory]
    [InlineData("bench", "train", "--tokens", "0")]
    [InlineData("bench", "train", "--batch", "-1")]
    [InlineData("footprint", "--method", "pyramidkv", "--evict", "1.5", "--prompt-tokens", "100")]
    [InlineData("footprint", "--method", "fastgen", "--prompt-tokens", "100")]
    [InlineData("footprint", "--method", "full", "--prompt-tokens", "-3")]
    [InlineData("run", "--model", "/nonexistent/model", "--tokens", "1 2")]
    [InlineData("probe", "--model", "/nonexistent/model")]
    [InlineData("probe", "--model", "data/models/kvnb-small", "--lengths", "512,many")]
    [InlineData("probe", "--model", "data/models/kvnb-small", "--examples", "0")]
    public void BadInputExitsWithTwoAndAMessage(params string[] args)
    {
        var (code, _, stderr) = Kvnb(args);
        Assert.Equal(2, code);
        Assert.StartsWith("kvnb: error:", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void Probe_prints_the_teacher_forced_accuracy_the_library_computes()
    {
        string model = Path.Combine(TestPaths.RepoRoot, "data", "models", "kvnb-small");
        var (code, stdout, _) = Kvnb("probe", "--model", model, "--tasks", "niah_mk,json_kv", "--lengths", "256,16", "--examples", "4", "--threads", "1");
        Assert.Equal(0, code);
        var trainable = new KvNotebooks.Training.TrainableLlama(KvNotebooks.Model.LlamaWeights.Load(model));
        foreach (var name in new[] { "niah_mk", "json_kv" })
        {
            var r = KvNotebooks.Training.Pretraining.TeacherForced.Evaluate(trainable, KvNotebooks.Tasks.TaskSuite.Get(name), 256, 4, seedBase: 2_000_000);
            var line = stdout.Split('\n').Single(l => l.StartsWith(name + " ") && l.Contains(" 256 "));
            Assert.Contains($"{r.Exact * 100:F1}%", line);
            Assert.Contains($"{r.TokenAccuracy * 100:F1}%", line);
        }
        Assert.Contains("needs ≥ 32 tokens", stdout); // 16 tokens: below the tasks' shortest length, said, not thrown
    }

    [Fact]
    public void InitRunAndLogitsOnARandomModel()
    {
        string cfg = Path.Combine(_dir, "config.json");
        KvNotebooks.Tests.Inference.TinyModels.Config().Save(cfg);
        string model = Path.Combine(_dir, "m");
        Assert.Equal(0, Kvnb("init", "--config", cfg, "--seed", "3", "--out", model).code);
        var (code, stdout, _) = Kvnb("run", "--model", model, "--tokens", "1 2 3 4 5 6 7 8 9 10", "--gen-tokens", "4", "--chunk", "3",
                                     "--method", "streaming", "--sink", "1", "--window", "2", "--json");
        Assert.Equal(0, code);
        var run = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(4, run.GetProperty("generated").GetArrayLength());
        var expected = KvFootprint.HeadMix(new ChunkPlan(10, 3), 4, 4, 4, 1, 2);
        Assert.Equal(expected.Entries, run.GetProperty("entries").GetInt64());
        Assert.True(run.GetProperty("peakKvBytes").GetInt64() > 0);

        string logits = Path.Combine(_dir, "logits.safetensors");
        Assert.Equal(0, Kvnb("logits", "--model", model, "--tokens", "1 2 3", "--out", logits).code);
        Assert.Equal([3, 37], KvNotebooks.Model.SafetensorsFile.Open(logits).Tensors["logits"].Shape);
        var bad = Kvnb("run", "--model", model, "--tokens", "1 2 99");
        Assert.Equal(2, bad.code);
        Assert.Contains("outside the vocabulary", bad.stderr);
    }

    private string RandomModel()
    {
        string cfg = Path.Combine(_dir, "config.json");
        KvNotebooks.Tests.Inference.TinyModels.Config().Save(cfg);
        string model = Path.Combine(_dir, "m");
        Assert.Equal(0, Kvnb("init", "--config", cfg, "--seed", "3", "--out", model).code);
        return model;
    }

    [Fact]
    public void RunScoredMethodsAndTheirFootprints()
    {
        string model = RandomModel();
        string tokens = string.Join(' ', KvNotebooks.Tests.Inference.TinyModels.Tokens(40, 37, seed: 5));
        var (code, stdout, stderr) = Kvnb("run", "--model", model, "--tokens", tokens, "--gen-tokens", "3", "--chunk", "12",
            "--method", "pyramidkv", "--schedule", "patched", "--evict", "0.5", "--obs-window", "4", "--json");
        Assert.True(code == 0, stderr);
        var run = JsonDocument.Parse(stdout).RootElement;
        // The accounting rule is the default: round((1 − p)·c) + window per chunk.
        var schedule = KvNotebooks.Eviction.EvictionSchedule.Patched(KvNotebooks.Eviction.EvictionBudget.FractionPlusWindow(0.5), 4);
        var expected = KvFootprint.Scheduled(new ChunkPlan(40, 12), 3, schedule);
        int heads = 2 * 2;
        Assert.Equal(heads * expected.Entries, run.GetProperty("entries").GetInt64());
        Assert.Equal(heads * expected.PeakEntries, run.GetProperty("peakEntries").GetInt64());
        Assert.Equal(3 * 4, run.GetProperty("patchRows").GetInt64());
        Assert.StartsWith("patched", run.GetProperty("schedule").GetString());
        Assert.True(run.GetProperty("peakKvBytes").GetInt64() > 0);
        // --budget-rule code still runs the paper code's int((1 − p)·c).
        var codeRun = Kvnb("run", "--model", model, "--tokens", tokens, "--gen-tokens", "3", "--chunk", "12",
            "--method", "pyramidkv", "--schedule", "patched", "--evict", "0.5", "--obs-window", "4", "--budget-rule", "code", "--json");
        Assert.True(codeRun.code == 0, codeRun.stderr);
        var codeExpected = KvFootprint.Scheduled(new ChunkPlan(40, 12), 3,
            KvNotebooks.Eviction.EvictionSchedule.Patched(KvNotebooks.Eviction.EvictionBudget.Fraction(0.5), 4));
        Assert.Equal(heads * codeExpected.Entries, JsonDocument.Parse(codeRun.stdout).RootElement.GetProperty("entries").GetInt64());
        Assert.NotEqual(codeExpected.Entries, expected.Entries);

        // kvnb footprint --schedule counts the same run analytically; without it, the paper's formula.
        var fp = Kvnb("footprint", "--method", "pyramidkv", "--schedule", "patched", "--evict", "0.5", "--obs-window", "4",
            "--prompt-tokens", "40", "--gen-tokens", "3", "--chunk", "12", "--json");
        Assert.Equal(0, fp.code);
        Assert.Equal(expected.Footprint, JsonDocument.Parse(fp.stdout).RootElement.GetProperty("footprint").GetDouble(), 12);
        var formula = Kvnb("footprint", "--method", "pyramidkv", "--evict", "0.5", "--prompt-tokens", "40", "--gen-tokens", "3", "--chunk", "12", "--patch-window", "4", "--json");
        Assert.Equal(KvFootprint.TokenEviction(new ChunkPlan(40, 12), 3, 0.5, 4).Footprint,
            JsonDocument.Parse(formula.stdout).RootElement.GetProperty("footprint").GetDouble(), 12);

        // Quantized KV: the measured footprint in bits equals the accountant; replicated storage shows G x the bytes.
        var q = Kvnb("run", "--model", model, "--tokens", tokens, "--gen-tokens", "3", "--method", "quantized", "--bits", "4",
            "--group-size", "4", "--residual", "8", "--chunk", "12", "--json");
        Assert.Equal(0, q.code);
        var qExpected = KvFootprint.Quantized(new ChunkPlan(40, 12), 3, new KvNotebooks.Cache.KvQuantization(4, 4, 8));
        Assert.Equal(qExpected.Footprint, JsonDocument.Parse(q.stdout).RootElement.GetProperty("footprint").GetDouble(), 12);
        var qf = Kvnb("footprint", "--method", "quantized", "--bits", "4", "--group-size", "4", "--residual", "8",
            "--prompt-tokens", "40", "--gen-tokens", "3", "--chunk", "12", "--json");
        Assert.Equal(qExpected.Footprint, JsonDocument.Parse(qf.stdout).RootElement.GetProperty("footprint").GetDouble(), 12);
        long Bytes(string gqa) => JsonDocument.Parse(Kvnb("run", "--model", model, "--tokens", tokens, "--gen-tokens", "3", "--chunk", "12",
            "--method", "snapkv", "--budget", "16", "--obs-window", "4", "--gqa", gqa, "--json").stdout).RootElement.GetProperty("peakKvBytes").GetInt64();
        Assert.Equal(2 * Bytes("shared"), Bytes("replicated"));

        string csv = Path.Combine(_dir, "timeline.csv");
        var text = Kvnb("run", "--model", model, "--tokens", tokens, "--gen-tokens", "2", "--chunk", "12", "--method", "h2o", "--schedule", "naive",
            "--budget", "20", "--obs-window", "4", "--timeline", csv);
        Assert.Equal(0, text.code);
        var lines = File.ReadAllLines(csv);
        Assert.Equal(4 + 2 + 1, lines.Length);                    // header, 4 chunks, 2 decode steps
        Assert.Contains("EntriesWhileAttending", lines[0]);
        Assert.Contains("StepPeakBytes", lines[0]);
        Assert.Contains("h2o (naive, budget 20, window 4)", text.stdout);
        Assert.Contains("peak held", text.stdout);
    }

    [Theory]
    [InlineData("[0, 1)", "--method", "pyramidkv", "--evict", "1")]
    [InlineData("[0, 1)", "--method", "snapkv", "--evict", "-0.1")]
    [InlineData("below the always-kept observation window", "--method", "snapkv", "--budget", "10", "--obs-window", "64")]
    [InlineData("either --evict or --budget", "--method", "snapkv", "--evict", "0.5", "--budget", "100")]
    [InlineData("--schedule must be", "--method", "snapkv", "--schedule", "eventually")]
    [InlineData("--bits must be 2, 4 or 8", "--method", "quantized", "--bits", "3")]
    [InlineData("--bits applies to quantized, not 'snapkv'", "--method", "snapkv", "--bits", "4")]
    [InlineData("apply to the score-based methods", "--method", "full", "--schedule", "naive")]
    [InlineData("--pool-kernel must be odd", "--method", "snapkv", "--pool-kernel", "4")]
    [InlineData("--gqa must be", "--method", "snapkv", "--gqa", "sometimes")]
    [InlineData("--gqa replicated applies", "--method", "streaming", "--gqa", "replicated")]
    [InlineData("patching", "--method", "l2", "--schedule", "patched")]
    [InlineData("--decode-budget needs --decode-evict", "--method", "h2o", "--decode-budget", "100")]
    [InlineData("does not divide the head dimension", "--method", "quantized", "--group-size", "3")]
    public void ImpossibleEvictionSettingsExitWithTwoAndOneLine(string message, params string[] args)
    {
        string model = RandomModel();
        var (code, _, stderr) = Kvnb(["run", "--model", model, "--tokens", "1 2 3 4 5 6", .. args]);
        Assert.Equal(2, code);
        Assert.StartsWith("kvnb: error:", stderr);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData("footprint", "--method", "snapkv", "--evict", "1", "--prompt-tokens", "100")]
    [InlineData("footprint", "--method", "full", "--schedule", "naive", "--prompt-tokens", "100")]
    [InlineData("footprint", "--method", "snapkv", "--schedule", "patched", "--budget", "10", "--prompt-tokens", "100")]
    [InlineData("footprint", "--method", "quantized", "--bits", "5", "--prompt-tokens", "100")]
    [InlineData("footprint", "--method", "pyramidkv", "--bits", "4", "--prompt-tokens", "100")]
    public void ImpossibleFootprintSettingsExitWithTwo(params string[] args)
    {
        var (code, _, stderr) = Kvnb(args);
        Assert.Equal(2, code);
        Assert.StartsWith("kvnb: error:", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private string TaskModel()
    {
        string model = Path.Combine(_dir, "task-model");
        KvNotebooks.Model.LlamaWeights.Random(new KvNotebooks.Model.LlamaConfig
        {
            VocabSize = KvNotebooks.Tasks.Vocabulary.Default.Size, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4,
            NumKvHeads = 2, HeadDim = 8, RopeTheta = 1e6, MaxPositionEmbeddings = 4096,
        }, seed: 5).Save(model);
        return model;
    }

    [Fact]
    public void SweepTwiceDoesNoWorkTheSecondTimeAndLeavesTheCsvAlone()
    {
        string model = TaskModel(), csv = Path.Combine(_dir, "sweep.csv");
        string[] args = ["sweep", "--model", model, "--methods", "full,pyramidkv:naive,pyramidkv:patched", "--evict", "0.3:0.6:0.3",
            "--chunks", "128", "--contexts", "256", "--tasks", "niah_mk", "--examples", "1", "--obs-window", "16",
            "--eval-dir", Path.Combine(_dir, "none"), "--csv", csv];
        var first = Kvnb(args);
        Assert.True(first.code == 0, first.stderr);
        Assert.Contains("5 configuration(s) × 1 context(s) × 1 task(s) = 5 rows of 1 example(s) (fixed sets); 0 already in", first.stderr);
        Assert.Contains("[   5/5]", first.stderr); // one line per finished row (stderr is not a terminal here)
        var rows = KvNotebooks.Evaluation.EvalRow.Load(csv);
        Assert.Equal(["full", "pyramidkv/naive", "pyramidkv/naive", "pyramidkv/patched", "pyramidkv/patched"], rows.Select(r => r.Method));
        Assert.Contains("evict=0.6;rule=accounting", rows[4].MethodConfig);
        Assert.All(rows, r => Assert.Equal(r.Score, Assert.Single(r.ExampleScores!)));
        byte[] before = File.ReadAllBytes(csv);
        var sidecar = JsonDocument.Parse(File.ReadAllText(csv + ".config.json")).RootElement.GetProperty("runs")[0];
        Assert.Contains("--evict 0.3:0.6:0.3", sidecar.GetProperty("command").GetString());
        Assert.Equal("task-model", sidecar.GetProperty("model").GetString());

        var second = Kvnb(args);
        Assert.Equal(0, second.code);
        Assert.Contains("5 already in", second.stderr);
        Assert.Contains("0 row(s) run, 5 skipped", second.stderr);
        Assert.Equal(before, File.ReadAllBytes(csv));

        var dry = Kvnb([.. args.Select(a => a == "0.3:0.6:0.3" ? "0.3:0.9:0.3" : a), "--dry-run"]);
        Assert.Equal(0, dry.code);
        Assert.Equal(5, dry.stdout.Split('\n').Count(l => l.StartsWith("done")));
        Assert.Equal(2, dry.stdout.Split('\n').Count(l => l.StartsWith("todo")));
        Assert.Equal(before, File.ReadAllBytes(csv));
    }

    [Fact]
    public void EvalRowsOfDifferentRatesNoLongerReplaceEachOther()
    {
        string model = TaskModel(), csv = Path.Combine(_dir, "eval.csv");
        foreach (var p in new[] { "0.3", "0.6" })
            Assert.Equal(0, Kvnb("eval", "--model", model, "--tasks", "niah_mk", "--context", "256", "--examples", "1", "--chunk", "128",
                "--method", "snapkv", "--schedule", "patched", "--evict", p, "--obs-window", "16", "--eval-dir", Path.Combine(_dir, "none"), "--csv", csv).code);
        var rows = KvNotebooks.Evaluation.EvalRow.Load(csv);
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal("snapkv/patched", r.Method));
        Assert.Contains("evict=0.3", rows[0].MethodConfig);
        Assert.Contains("evict=0.6", rows[1].MethodConfig);
    }

    [Fact]
    public void EvalWithASeedWritesRowsKeptApartFromTheFixedSets()
    {
        string model = TaskModel(), csv = Path.Combine(_dir, "seeded.csv");
        string[] args = ["eval", "--model", model, "--tasks", "niah_mk", "--context", "256", "--examples", "2", "--eval-dir", Path.Combine(_dir, "none")];
        var (code, stdout, _) = Kvnb([.. args, "--seed", "5", "--json"]);
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        var row = Assert.Single(doc.RootElement.GetProperty("rows").EnumerateArray());
        Assert.Equal(2, row.GetProperty("examples").GetInt32());
        Assert.Equal("seed:5", row.GetProperty("exampleSet").GetString());
        Assert.Equal(2, row.GetProperty("exampleScores").GetArrayLength());

        Assert.Equal(0, Kvnb([.. args, "--seed", "5", "--csv", csv]).code);
        Assert.Equal(0, Kvnb([.. args, "--csv", csv]).code);
        Assert.Equal(0, Kvnb([.. args, "--held-out", "--csv", csv]).code);
        var rows = KvNotebooks.Evaluation.EvalRow.Load(csv);
        Assert.Equal(["seed:5", "fixed", "seed:91000000"], rows.Select(r => r.ExampleSet));
        Assert.Equal(3, rows.Select(r => r.Key).Distinct().Count());
        Assert.All(rows, r => Assert.Equal(2, r.ExampleScores!.Count));
        var both = Kvnb([.. args, "--held-out", "--seed", "5"]);
        Assert.Equal(2, both.code);
        Assert.Contains("not both", both.stderr);
    }

    [Fact]
    public void EvalAnswersFileHoldsEachExamplesGoldAndGeneratedAnswerAndItsScore()
    {
        string model = TaskModel(), answers = Path.Combine(_dir, "out", "answers.jsonl");
        var (code, stdout, _) = Kvnb("eval", "--model", model, "--tasks", "niah_mk,json_kv", "--context", "256", "--examples", "3", "--seed", "5",
            "--eval-dir", Path.Combine(_dir, "none"), "--answers", answers, "--json");
        Assert.Equal(0, code);
        var lines = File.ReadAllLines(answers).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(6, lines.Count);
        var set = KvNotebooks.Evaluation.EvalSet.Create(KvNotebooks.Tasks.TaskSuite.Parse("niah_mk,json_kv"), 256, 3, 5);
        using var doc = JsonDocument.Parse(stdout);
        foreach (var row in doc.RootElement.GetProperty("rows").EnumerateArray())
        {
            string name = row.GetProperty("task").GetString()!;
            var task = KvNotebooks.Tasks.TaskSuite.Get(name);
            var mine = lines.Where(l => l.GetProperty("task").GetString() == name).ToList();
            var exs = set.For(name).Take(3).ToList();
            Assert.Equal(exs.Select(e => e.Seed), mine.Select(l => l.GetProperty("seed").GetInt32()));
            for (int i = 0; i < 3; i++)
            {
                var gold = mine[i].GetProperty("gold_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                var generated = mine[i].GetProperty("generated_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                Assert.Equal(exs[i].Questions[0].Answer, gold);
                Assert.Equal(KvNotebooks.Tasks.Vocabulary.Default.Text(gold), mine[i].GetProperty("gold").GetString());
                Assert.Equal(KvNotebooks.Tasks.Vocabulary.Default.Text(generated), mine[i].GetProperty("generated").GetString());
                Assert.Equal(task.Score(exs[i].Questions[0], generated), mine[i].GetProperty("score").GetDouble(), 12);
                Assert.Equal(256, mine[i].GetProperty("context").GetInt32());
            }
            Assert.Equal(row.GetProperty("score").GetDouble(), mine.Average(l => l.GetProperty("score").GetDouble()), 12);
        }
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(answers)!, "*.tmp"));
    }

    [Theory]
    [InlineData("--evict: range '0.9:0.1:0.1' ends before it starts", "--methods", "snapkv", "--evict", "0.9:0.1:0.1")]
    [InlineData("positive step", "--methods", "snapkv", "--evict", "0.1:0.9:0")]
    [InlineData("--evict must be a fraction p in [0, 1)", "--methods", "snapkv", "--evict", "0.5:1.0:0.5")]
    [InlineData("--evict applies to the score-based methods", "--methods", "full,quantized", "--evict", "0.5")]
    [InlineData("--bits applies to quantized, and --methods has none", "--methods", "snapkv", "--bits", "2,4")]
    [InlineData("--bits must be 2, 4 or 8", "--methods", "quantized", "--bits", "2:4:1")]
    [InlineData("--chunks: 'big' in 'big' is not an integer", "--methods", "full", "--chunks", "big")]
    [InlineData("use l2:naive", "--methods", "l2:patched")]
    [InlineData("unknown task", "--methods", "full", "--tasks", "sudoku")]
    [InlineData("--gqa: each item", "--methods", "snapkv", "--gqa", "shared,sometimes")]
    public void BadSweepGridsExitWithTwoAndOneLine(string message, params string[] args)
    {
        string model = TaskModel();
        var (code, _, stderr) = Kvnb(["sweep", "--model", model, "--dry-run", .. args]);
        Assert.Equal(2, code);
        Assert.StartsWith("kvnb: error:", stderr);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
