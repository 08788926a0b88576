using KvNotebooks.Cache;
using System.Text.Json.Nodes;
using KvNotebooks.Evaluation;
using KvNotebooks.HeadMasks;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.Evaluation;

public sealed class SweepTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-sweep").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    // ---- ranges ----

    [Fact]
    public void Ranges_expand_inclusively_with_clean_decimals_and_lists_keep_their_order()
    {
        Assert.Equal([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], SweepRange.Doubles("0.1:0.9:0.1", "--evict"));
        Assert.Equal([0.7, 0.1, 0.3, 0.5], SweepRange.Doubles("0.7, 0.1:0.5:0.2, 0.3", "--evict"));
        Assert.Equal([0.5], SweepRange.Doubles("0.5:0.5:0.1", "--evict"));
        Assert.Equal([0, 512, 1024, 1536, 2048], SweepRange.Ints("none,512:2048:512", "--chunks", new Dictionary<string, int> { ["none"] = 0 }));
        Assert.Equal(["pyramidkv:patched", "full"], SweepRange.Words("PyramidKV:patched, full,full", "--methods"));
    }

    [Theory]
    [InlineData("0.9:0.1:0.1", "ends before it starts")]
    [InlineData("0.1:0.9:0", "positive step")]
    [InlineData("0.1:0.9:-0.1", "positive step")]
    [InlineData("0.1:0.9", "neither a number nor a range")]
    [InlineData("0.1,,0.3", "empty item")]
    [InlineData("0.1;0.3", "not a number")]
    [InlineData("0:0.9:0.0001", "values (at most")]
    public void Bad_ranges_are_rejected_with_the_option_named(string text, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => SweepRange.Doubles(text, "--evict"));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("--evict", e.Message);
    }

    // ---- grids ----

    private static SweepGrid Grid(params string[] methods) => new()
    {
        Methods = methods, Evicts = [0.3, 0.6], Chunks = [256, 512], Knobs = Lists(("bits", [2, 4, 8])), Contexts = [1024],
        Tasks = [TaskSuite.Get("json_kv"), TaskSuite.Get("rag")], Examples = 1,
    };

    [Fact]
    public void A_grid_crosses_each_dimension_only_with_the_methods_it_applies_to()
    {
        var plan = (Grid("full", "pyramidkv:naive", "pyramidkv:patched", "l2", "quantized") with { Schedules = ["naive", "patched"] }).Expand();
        // full: 1 config; pyramidkv naive and patched: 2 rates each; l2: naive only (2 rates); quantized: 3 bit widths.
        // Each × 2 chunks × 1 context × 2 tasks.
        Assert.Equal((1 + 2 + 2 + 2 + 3) * 2 * 2, plan.Points.Count);
        Assert.Equal(plan.Points.Count, plan.Points.Select(p => p.Key("m")).Distinct().Count());
        Assert.Contains("full;chunk=256", plan.Configs);
        Assert.Contains("pyramidkv;schedule=patched;evict=0.6;rule=accounting;obs=64;pool=5;beta=20;gqa=shared;chunk=512", plan.Configs);
        Assert.Contains("l2;schedule=naive;evict=0.3;rule=accounting;obs=64;skip-layers=2;gqa=shared;chunk=256", plan.Configs);
        Assert.Contains("quantized;bits=8;group=32;residual=128;chunk=512", plan.Configs);
        Assert.DoesNotContain(plan.Configs, c => c.StartsWith("l2;schedule=patched"));
        Assert.Contains(plan.Notes, n => n.Contains("l2 × patched left out"));
        Assert.Equal(["full", "pyramidkv/naive", "pyramidkv/patched", "l2/naive", "quantized"], plan.Points.Select(p => p.Spec.Label).Distinct());
        // Config-major order: a stopped sweep has whole configurations (every task) done first.
        Assert.Equal(["json_kv", "rag"], plan.Points.Take(2).Select(p => p.Task.Name));
        Assert.True(plan.Points.Take(2).All(p => p.Config == "full;chunk=256"));
    }

    [Fact]
    public void A_score_based_method_without_a_schedule_follows_kvnb_run_post_fill_single_naive_chunked()
    {
        var plan = (Grid("snapkv") with { Chunks = [Chunking.None, 512], Evicts = [0.5] }).Expand();
        Assert.Equal(["snapkv;schedule=postfill;evict=0.5;rule=accounting;obs=64;pool=5;gqa=shared;chunk=none", "snapkv;schedule=naive;evict=0.5;rule=accounting;obs=64;pool=5;gqa=shared;chunk=512"], plan.Configs);
        var code = (Grid("snapkv") with { Chunks = [512], Evicts = [0.5], AccountingRule = false }).Expand();
        Assert.Equal(["snapkv;schedule=naive;evict=0.5;rule=code;obs=64;pool=5;gqa=shared;chunk=512"], code.Configs);
        Assert.Equal(["snapkv/naive/code"], code.Points.Select(p => p.Spec.Label).Distinct());
        var heldOut = (Grid("full") with { SeedBase = EvalSet.HeldOutSeed }).Expand();
        Assert.All(heldOut.Points, p => Assert.Equal("seed:91000000", p.ExampleSet));
        Assert.Empty(heldOut.Points.Select(p => p.Key("m")).Intersect(Grid("full").Expand().Points.Select(p => p.Key("m"))));
        var gqa = (Grid("snapkv:patched") with { Evicts = [0.5], Chunks = [256], Replicated = [false, true] }).Expand();
        Assert.Equal(["snapkv/patched", "snapkv/patched/replicated"], gqa.Points.Select(p => p.Spec.Label).Distinct());
    }

    [Theory]
    [InlineData("unknown method", "fastgen")]
    [InlineData("only the score-based methods", "full:naive")]
    [InlineData("patching", "l2:patched")]
    [InlineData("is not one of", "snapkv:eventually")]
    public void Impossible_grids_fail_before_running(string message, string method) =>
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => Grid(method).Expand()).Message);

    [Fact]
    public void Model_dependent_settings_are_checked_when_the_grid_is_expanded_for_a_model()
    {
        var grid = Grid("quantized") with { Knobs = Lists(("group-size", [3])) };
        grid.Expand(); // no model: not checked
        Assert.Contains("does not divide the head dimension", Assert.Throws<ArgumentException>(() => grid.Expand(TaskModel())).Message);
        Assert.Contains("below the shortest", Assert.Throws<ArgumentException>(() => (Grid("full") with { Contexts = [64] }).Expand()).Message);
        Assert.Contains("--examples", Assert.Throws<ArgumentException>(() => (Grid("full") with { Examples = 0 }).Expand()).Message);
        Assert.Contains("chunk size", Assert.Throws<ArgumentOutOfRangeException>(() => (Grid("full") with { Chunks = [Chunking.Of(-1)] }).Expand()).Message);
    }

    [Fact]
    public void A_named_curve_labels_every_configuration_and_keeps_them_apart_by_their_lines()
    {
        var plan = (Grid("pyramidkv:naive") with { Curve = "my-curve" }).Expand();
        Assert.All(plan.Points, p => Assert.Equal("my-curve", p.Spec.Label));
        Assert.Equal(2 * 2, plan.Configs.Count);   // 2 rates × 2 chunk sizes, still distinct
        Assert.Equal(plan.Points.Count, plan.Points.Select(p => p.Key("m")).Distinct().Count());
    }

    [Fact]
    public void Configurations_that_differ_in_any_setting_have_different_keys()
    {
        var a = MethodSpec.Of("pyramidkv") with { Schedule = EvictionSchedule.Patched(EvictionBudget.FractionPlusWindow(0.5)) };
        var b = a with { Schedule = EvictionSchedule.Patched(EvictionBudget.FractionPlusWindow(0.7)) };
        var c = a with { Schedule = EvictionSchedule.Naive(EvictionBudget.FractionPlusWindow(0.5)) };
        var d = a.With(PyramidKV.BetaKnob, 10);
        var e = a with { Storage = new KvStorage(ReplicatePerQueryHead: true) };
        var f = a with { Storage = new KvStorage(Quantization: new KvQuantization(4)) };
        var g = a with { Schedule = EvictionSchedule.Patched(EvictionBudget.Fraction(0.5)) };
        Assert.Equal(7, new[] { a, b, c, d, e, f, g }.Select(s => s.Describe(512)).Distinct().Count());
        Assert.NotEqual(a.Describe(512), a.Describe(Chunking.None));
        Assert.EndsWith("chunk=none", a.Describe(Chunking.None));
        Assert.Equal("pyramidkv;schedule=patched;evict=0.5;rule=accounting;obs=64;pool=5;beta=20;gqa=shared;kv-bits=4;kv-group=32;kv-residual=128;chunk=512", f.Describe(512));
        Assert.Equal("pyramidkv/patched/kv4", f.Label);
        Assert.Equal("pyramidkv/patched", a.Label);
        Assert.Equal("p=0.5", a.Point);
        // The code rule is labelled on the curve and in the line.
        Assert.Equal("pyramidkv/patched/code", g.Label);
        Assert.Equal("pyramidkv;schedule=patched;evict=0.5;rule=code;obs=64;pool=5;beta=20;gqa=shared;chunk=512", g.Describe(512));
        Assert.Equal("pyramidkv/patched/replicated/code", (g with { Storage = new KvStorage(ReplicatePerQueryHead: true) }).Label);
        // The default rule is the accounting rule everywhere a rate is given.
        Assert.Equal(BudgetKind.EvictPlusWindow, MethodSpec.Of("snapkv").EffectiveSchedule.Budget.Kind);
        Assert.Equal(BudgetKind.EvictPlusWindow, new EvictionSchedule().Budget.Kind);
        Assert.True(new SweepGrid().AccountingRule);
    }

    [Theory]
    // Before the rule was written, a rate was the code rule: it is read as such, and a current line passes unchanged.
    [InlineData("pyramidkv/patched", "pyramidkv;schedule=patched;evict=0.7;obs=64;pool=5;beta=20;gqa=shared;chunk=512",
                "pyramidkv/patched/code", "pyramidkv;schedule=patched;evict=0.7;rule=code;obs=64;pool=5;beta=20;gqa=shared;chunk=512")]
    [InlineData("snapkv/patched/replicated", "snapkv;schedule=patched;evict=0.1;obs=64;pool=5;gqa=replicated;chunk=512",
                "snapkv/patched/replicated/code", "snapkv;schedule=patched;evict=0.1;rule=code;obs=64;pool=5;gqa=replicated;chunk=512")]
    [InlineData("h2o/naive/accounting", "h2o;schedule=naive;evict=0.5;rule=accounting;obs=64;gqa=shared;chunk=512",
                "h2o/naive", "h2o;schedule=naive;evict=0.5;rule=accounting;obs=64;gqa=shared;chunk=512")]
    [InlineData("pyramidkv/patched/code", "pyramidkv;schedule=patched;evict=0.7;rule=code;obs=64;chunk=512",
                "pyramidkv/patched/code", "pyramidkv;schedule=patched;evict=0.7;rule=code;obs=64;chunk=512")]
    [InlineData("h2o/naive/budget", "h2o;schedule=naive;budget=512;obs=64;gqa=shared;chunk=512", "h2o/naive/budget", "h2o;schedule=naive;budget=512;obs=64;gqa=shared;chunk=512")]
    [InlineData("full", "full;chunk=512", "full", "full;chunk=512")]
    [InlineData("quantized", "quantized;bits=4;group-size=32;residual=128;chunk=512", "quantized", "quantized;bits=4;group-size=32;residual=128;chunk=512")]
    public void Rows_written_before_the_budget_rule_was_explicit_are_read_as_what_they_are(string label, string config, string newLabel, string newConfig)
    {
        Assert.Equal((newLabel, newConfig), MethodSpec.ReadLegacyRule(label, config));
        Assert.Equal((newLabel, newConfig), MethodSpec.ReadLegacyRule(newLabel, newConfig));
    }

    // ---- running and resuming ----

    private static LlamaConfig TaskModel() => new()
    {
        VocabSize = Vocabulary.Default.Size, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = 2,
        HeadDim = 8, RopeTheta = 1e6, MaxPositionEmbeddings = 4096,
    };

    private string RandomModel()
    {
        string dir = Path.Combine(_dir, "tiny");
        if (!Directory.Exists(dir)) LlamaWeights.Random(TaskModel(), seed: 5).Save(dir);
        return dir;
    }

    private SweepGrid SmallGrid() => new()
    {
        Methods = ["full", "snapkv:patched", "quantized"], Evicts = [0.5], Chunks = [128], Contexts = [256],
        Tasks = [TaskSuite.Get("niah_mk"), TaskSuite.Get("icl_few")], Examples = 1, ObsWindow = 16,
        Knobs = Lists(("bits", [4]), ("group-size", [8]), ("residual", [16])),
    };

    [Fact]
    public void A_resumed_sweep_skips_finished_rows_and_leaves_the_csv_unchanged()
    {
        string csv = Path.Combine(_dir, "sweep.csv");
        var options = new SweepOptions { ModelDir = RandomModel(), CsvPath = csv, EvalDir = Path.Combine(_dir, "no-eval-sets"), CommandLine = "test" };
        var first = Sweep.Run(SmallGrid(), options);
        Assert.Equal(6, first.Ran);
        Assert.Equal(6, EvalRow.Load(csv).Count);
        Assert.All(EvalRow.Load(csv), r => Assert.Equal("tiny", r.Model));
        byte[] before = File.ReadAllBytes(csv);
        string sidecar = File.ReadAllText(Sweep.SidecarPath(csv));

        int examples = 0;
        var second = Sweep.Run(SmallGrid(), options, onExample: (_, _) => examples++);
        Assert.Equal(0, second.Ran);
        Assert.Equal(6, second.Skipped);
        Assert.Equal(0, examples);
        Assert.Equal(before, File.ReadAllBytes(csv));
        Assert.Equal(sidecar, File.ReadAllText(Sweep.SidecarPath(csv)));

        // A row lost (a killed sweep) is the only one redone; the others keep their bytes.
        var rows = EvalRow.Load(csv);
        EvalRow.Save(csv, rows.Where(r => !(r.Method == "snapkv/patched" && r.Task == "icl_few")));
        var third = Sweep.Run(SmallGrid(), options);
        Assert.Equal(1, third.Ran);
        var after = EvalRow.Load(csv);
        Assert.Equal(6, after.Count);
        Assert.Equal(rows.Where(r => r.Method != "snapkv/patched" || r.Task != "icl_few").Select(r => r with { Seconds = 0 }),
                     after.Where(r => r.Method != "snapkv/patched" || r.Task != "icl_few").Select(r => r with { Seconds = 0 }));
        // Determinism: the redone row scores and measures exactly what the lost one did.
        var lost = rows.Single(r => r.Method == "snapkv/patched" && r.Task == "icl_few");
        var redone = after.Single(r => r.Method == "snapkv/patched" && r.Task == "icl_few");
        Assert.Equal((lost.Score, lost.Footprint, lost.PeakKvBytes), (redone.Score, redone.Footprint, redone.PeakKvBytes));

        var runs = JsonNode.Parse(File.ReadAllText(Sweep.SidecarPath(csv)))!["runs"]!.AsArray();
        Assert.Equal(2, runs.Count);
        Assert.Equal(1, runs[1]!["rows_run"]!.GetValue<int>());
        Assert.Equal(5, runs[1]!["rows_skipped"]!.GetValue<int>());
        Assert.Equal(16, runs[0]!["model_sha256"]!.GetValue<string>().Length);
    }

    [Fact]
    public void A_row_with_another_example_count_is_redone_and_replaced_in_place()
    {
        string csv = Path.Combine(_dir, "sweep.csv");
        var options = new SweepOptions { ModelDir = RandomModel(), CsvPath = csv, EvalDir = Path.Combine(_dir, "none") };
        var grid = SmallGrid() with { Methods = ["full"], Tasks = [TaskSuite.Get("niah_mk")] };
        Sweep.Run(grid, options);
        var more = Sweep.Run(grid with { Examples = 2 }, options);
        Assert.Equal(1, more.Ran);
        Assert.Equal(2, Assert.Single(EvalRow.Load(csv)).Examples);
    }

    [Fact]
    public void A_cancelled_sweep_keeps_its_finished_rows_and_says_so_in_the_sidecar()
    {
        string csv = Path.Combine(_dir, "sweep.csv");
        var options = new SweepOptions { ModelDir = RandomModel(), CsvPath = csv, EvalDir = Path.Combine(_dir, "none") };
        using var cts = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() => Sweep.Run(SmallGrid(), options, onRow: p => { if (p.Done == 2) cts.Cancel(); }, cancel: cts.Token));
        Assert.Equal(2, EvalRow.Load(csv).Count);
        var run = JsonNode.Parse(File.ReadAllText(Sweep.SidecarPath(csv)))!["runs"]![0]!;
        Assert.True(run["interrupted"]!.GetValue<bool>());
        Assert.Equal(2, run["rows_run"]!.GetValue<int>());
        Assert.Equal(4, Sweep.Run(SmallGrid(), options).Ran);
    }

    [Fact]
    public void Two_sweeps_cannot_write_one_csv_at_once()
    {
        string csv = Path.Combine(_dir, "sweep.csv");
        var options = new SweepOptions { ModelDir = RandomModel(), CsvPath = csv, EvalDir = Path.Combine(_dir, "none") };
        var grid = SmallGrid() with { Methods = ["full"], Tasks = [TaskSuite.Get("niah_mk")] };
        IOException? inner = null;
        Sweep.Run(grid, options, onExample: (_, _) => inner ??= Assert.Throws<IOException>(() => Sweep.Run(grid, options)));
        Assert.Contains("being written by another sweep", inner!.Message);
        Assert.Single(EvalRow.Load(csv));
        Assert.False(File.Exists(csv + ".lock"));
        Assert.Equal(0, Sweep.Run(grid, options).Ran); // the lock is gone with the first sweep
    }

    // ---- critical footprint per category ----

    private static EvalRow Row(string method, string config, string task, string category, double score, double footprint, int chunk = 1024) => new()
    {
        Model = "m", Method = method, MethodConfig = config, Context = 4096, Chunk = chunk, Task = task, Category = category,
        Examples = 10, Score = score, Footprint = footprint, Chance = 0.01,
    };

    private static List<EvalRow> Full() =>
    [
        Row("full", "full;chunk=1024", "json_kv", "Recall", 1.0, 1),
        Row("full", "full;chunk=1024", "niah_mk", "Recall", 0.8, 1),
        Row("full", "full;chunk=1024", "rag", "RAG", 0.5, 1),
    ];

    [Fact]
    public void Critical_footprint_per_category_interpolates_category_means_against_full_attention()
    {
        // Recall: full = 0.9, target 0.81. Category points (footprint, mean score): (0.8, 0.9), (0.5, 0.85), (0.3, 0.6).
        var method = new List<EvalRow>
        {
            Row("pyramidkv/patched", "p=0.2", "json_kv", "Recall", 1.0, 0.8), Row("pyramidkv/patched", "p=0.2", "niah_mk", "Recall", 0.8, 0.8),
            Row("pyramidkv/patched", "p=0.5", "json_kv", "Recall", 0.9, 0.5), Row("pyramidkv/patched", "p=0.5", "niah_mk", "Recall", 0.8, 0.5),
            Row("pyramidkv/patched", "p=0.7", "json_kv", "Recall", 0.7, 0.3), Row("pyramidkv/patched", "p=0.7", "niah_mk", "Recall", 0.5, 0.3),
            // p = 0.9 has only one Recall task: an incomplete point, left out (it would fail the target).
            Row("pyramidkv/patched", "p=0.9", "json_kv", "Recall", 0.0, 0.1),
            Row("pyramidkv/patched", "p=0.2", "rag", "RAG", 0.5, 0.8), Row("pyramidkv/patched", "p=0.5", "rag", "RAG", 0.5, 0.5),
            Row("pyramidkv/patched", "p=0.7", "rag", "RAG", 0.46, 0.3),
        };
        var crit = SweepAnalysis.CriticalFootprints(method, Full());
        var recall = crit.Single(c => c.Category == "Recall");
        Assert.Equal(0.9, recall.FullScore, 12);
        Assert.Equal(3, recall.Points);
        Assert.Equal(CriticalKind.Exact, recall.Critical!.Kind);
        Assert.Equal(0.3 + (0.81 - 0.6) / (0.85 - 0.6) * 0.2, recall.Critical.Value, 12);
        var rag = crit.Single(c => c.Category == "RAG");
        Assert.Equal(CriticalKind.Below, rag.Critical!.Kind); // 0.46 ≥ 0.45 still holds at the smallest footprint
        Assert.Equal("<30.0", rag.Critical.ToString());
        Assert.Equal(new[] { "Recall", "RAG" }, crit.Select(c => c.Category));

        var table = SweepAnalysis.CriticalTable([.. Full(), .. method]);
        Assert.Equal(["method", "context", "chunk", "Recall", "RAG"], table.Columns);
        Assert.Equal(new object?[] { "pyramidkv/patched", 4096, "1024", "46.8", "<30.0" }, table.Rows[0]);
        Assert.Equal("90.0", table.Rows.Single(r => (string)r[0]! == "(full attention score)")[3]);
        // A category whose full-attention score is at chance has no meaningful critical footprint.
        var atChance = Full().Select(r => r.Category == "RAG" ? r with { Chance = 0.5 } : r).ToList();
        Assert.Equal(new object?[] { "pyramidkv/patched", 4096, "1024", "46.8", "n/a" }, SweepAnalysis.CriticalTable([.. atChance, .. method]).Rows[0]);
        var noBaseline = SweepAnalysis.CriticalTable(method);
        Assert.Equal(new object?[] { "pyramidkv/patched", 4096, "1024", "–", "–" }, Assert.Single(noBaseline.Rows));
    }

    [Fact]
    public void Critical_footprint_says_above_when_even_the_largest_footprint_falls_short_and_refuses_mixed_curves()
    {
        var naive = new List<EvalRow>
        {
            Row("pyramidkv/naive", "p=0.2", "json_kv", "Recall", 0.5, 0.8), Row("pyramidkv/naive", "p=0.2", "niah_mk", "Recall", 0.5, 0.8),
            Row("pyramidkv/naive", "p=0.5", "json_kv", "Recall", 0.1, 0.5), Row("pyramidkv/naive", "p=0.5", "niah_mk", "Recall", 0.1, 0.5),
        };
        var recall = Assert.Single(SweepAnalysis.CriticalFootprints(naive, Full()));
        Assert.Equal(">80.0", recall.Critical!.ToString());
        var mixed = naive.Append(Row("pyramidkv/naive", "p=0.2", "json_kv", "Recall", 0.5, 0.8, chunk: 512));
        Assert.Contains("2 curves", Assert.Throws<ArgumentException>(() => SweepAnalysis.CriticalFootprints(mixed, Full())).Message);
        Assert.Contains("no full-attention rows", Assert.Throws<ArgumentException>(() => SweepAnalysis.CriticalFootprints(naive, [])).Message);
    }

    [Fact]
    public void Category_points_average_tasks_and_name_the_swept_value()
    {
        var rows = new List<EvalRow>
        {
            Row("quantized", "quantized;bits=4;group=32;residual=128;chunk=1024", "json_kv", "Recall", 1.0, 0.25),
            Row("quantized", "quantized;bits=4;group=32;residual=128;chunk=1024", "niah_mk", "Recall", 0.5, 0.27),
        };
        var p = Assert.Single(SweepAnalysis.CategoryPoints(rows));
        Assert.Equal(("Recall", 0.75, 0.26, "4-bit", 2), (p.Category, p.Score, p.Footprint, p.Point, p.Tasks));
        Assert.Equal("p=0.7", SweepAnalysis.PointOf("pyramidkv;schedule=patched;evict=0.7;obs=64;chunk=1024"));
        Assert.Equal("window=256", SweepAnalysis.PointOf("streaming;sink=16;window=256;chunk=1024"));
        Assert.Equal("", SweepAnalysis.PointOf("full;chunk=1024"));
    }

    [Fact]
    public void The_swept_value_read_back_from_a_config_line_is_the_methods_own_point()
    {
        // Every curve a sweep writes must fall apart into its points again: a config line a method describes reads
        // back to that method's Point (learned head masks at several sparsities would otherwise merge into one point).
        string masks = Path.Combine(Path.GetTempPath(), $"kvnb-point-{Guid.NewGuid():N}.tsv");
        File.WriteAllText(masks, "0.1\t0.9\n0.5\t0.3\n");
        try
        {
            var specs = new List<MethodSpec>
            {
                MethodSpec.Of("pyramidkv") with { Schedule = EvictionSchedule.Patched(EvictionBudget.FractionPlusWindow(0.7)) },
                MethodSpec.Of("streaming").With(Streaming.WindowKnob, 256),
                MethodSpec.Of("quantized").With(QuantizedKv.BitsKnob, 4),
            };
            foreach (var name in new[] { "duo", "prulong" })
                foreach (double s in new[] { 0.1, 0.7 })
                    specs.Add(MethodSpec.Of(name).With(HeadMask.MasksKnob, masks).With(LearnedHeadMasks.SparsityKnob, s));
            foreach (var spec in specs)
                Assert.Equal(spec.Point, SweepAnalysis.PointOf(spec.Describe(Chunking.Of(512))));
            Assert.Equal(4, specs.Where(s => s.Name is "duo" or "prulong").Select(s => s.Name + SweepAnalysis.PointOf(s.Describe(Chunking.Of(512)))).Distinct().Count());
        }
        finally { File.Delete(masks); }
    }

    // ---- intervals ----

    /// <summary>A row holding per-example scores (its score their mean).</summary>
    private static EvalRow Scored(string method, string config, string task, string category, double footprint, params double[] scores) =>
        Row(method, config, task, category, scores.Average(), footprint) with { Examples = scores.Length, ExampleScores = new ExampleScores(scores) };

    [Fact]
    public void Critical_footprint_intervals_resample_every_point_and_the_baseline_together()
    {
        // Full attention gets half of 20 examples right. The method equals it, example for example, at footprint 0.9 and
        // gets nothing at 0.5. With one resample shared by the baseline and every point, the 0.9 point always holds and
        // the crossing is always 0.5 + 0.9·0.4 = 0.86: a zero-width interval. Independent resamples would spread it.
        double[] half = [.. Enumerable.Repeat(1.0, 10), .. Enumerable.Repeat(0.0, 10)];
        var full = new[] { Scored("full", "full;chunk=1024", "rag", "RAG", 1, half) };
        var method = new[]
        {
            Scored("pyramidkv/patched", "p=0.1", "rag", "RAG", 0.9, half),
            Scored("pyramidkv/patched", "p=0.5", "rag", "RAG", 0.5, new double[20]),
        };
        var rag = Assert.Single(SweepAnalysis.CriticalFootprints(method, full));
        Assert.Equal(0.86, rag.Critical!.Value, 12);
        Assert.NotNull(rag.Interval);
        Assert.Null(rag.NoInterval);
        Assert.Equal(0.86, rag.Interval!.Lo.Value, 12);
        Assert.Equal(0.86, rag.Interval.Hi.Value, 12);
        Assert.Equal(CriticalKind.Exact, rag.Interval.Hi.Kind);
        Assert.Equal("86.0 [86.0, 86.0]", rag.Text);
    }

    [Fact]
    public void Critical_footprint_intervals_bracket_the_value_and_say_when_they_cannot_be_drawn()
    {
        var rng = new Random(4);
        double[] Draw(double p, int n = 30) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() < p ? 1.0 : 0.0).ToArray();
        var full = new[] { Scored("full", "full;chunk=1024", "json_kv", "Recall", 1, Draw(0.9)), Scored("full", "full;chunk=1024", "niah_mk", "Recall", 1, Draw(0.9)) };
        var method = new List<EvalRow>();
        foreach (var (p, footprint, score) in new[] { ("p=0.1", 0.9, 0.9), ("p=0.3", 0.7, 0.85), ("p=0.5", 0.5, 0.6), ("p=0.7", 0.3, 0.3) })
            foreach (var task in new[] { "json_kv", "niah_mk" })
                method.Add(Scored("pyramidkv/patched", p, task, "Recall", footprint, Draw(score)));
        var recall = Assert.Single(SweepAnalysis.CriticalFootprints(method, full));
        var (lo, hi) = (recall.Interval!.Lo, recall.Interval.Hi);
        Assert.True(CriticalFootprintResult.Compare(lo, recall.Critical!) <= 0 && CriticalFootprintResult.Compare(recall.Critical!, hi) <= 0,
            $"{recall.Critical} outside {recall.Interval}");
        Assert.True(hi.Value > lo.Value);
        Assert.True(recall.Interval.StandardError > 0);
        Assert.Equal(recall.Interval, Assert.Single(SweepAnalysis.CriticalFootprints(method, full)).Interval); // seeded
        var table = SweepAnalysis.CriticalTable([.. full, .. method]);
        Assert.Matches(@"^\d+\.\d \[[<>]?\d+\.\d, [<>]?\d+\.\d\]$", (string)table.Rows[0][3]!);
        Assert.DoesNotContain(table.Rows, r => ((string)r[0]!).StartsWith("(no 95 %"));

        // Rows without per-example scores (older CSVs): the value alone, and a closing line saying why.
        var old = SweepAnalysis.CriticalTable([.. full.Select(r => r with { ExampleScores = null }), .. method]);
        Assert.DoesNotContain("[", (string)old.Rows[0][3]!);
        Assert.Contains(old.Rows, r => (string)r[0]! == "(no 95 % interval: rows without per-example scores)");
        // Unequal example counts cannot be resampled together.
        var uneven = SweepAnalysis.CriticalFootprints(method, full.Select(r => r with { Examples = 4, ExampleScores = new ExampleScores([1, 1, 1, 0]), Score = 0.75 }));
        Assert.Contains("cannot be resampled together", Assert.Single(uneven).NoInterval);
    }

    [Fact]
    public void Held_out_rows_form_their_own_curves_and_baselines()
    {
        double[] s = [1, 0, 1, 1];
        var fixedRows = new[] { Scored("full", "full;chunk=1024", "rag", "RAG", 1, s), Scored("h2o/naive", "p=0.5", "rag", "RAG", 0.5, s) };
        var heldOut = fixedRows.Select(r => r with { ExampleSet = EvalRow.SeedSet(EvalSet.HeldOutSeed), Score = 0.5, ExampleScores = new ExampleScores([1, 0, 1, 0]) }).ToList();
        var points = SweepAnalysis.CategoryPoints([.. fixedRows, .. heldOut]);
        Assert.Equal(4, points.Count);
        Assert.Equal(2, points.Count(p => p.ExampleSet == "seed:91000000"));
        var table = SweepAnalysis.CriticalTable([.. fixedRows, .. heldOut]);
        Assert.Equal(["h2o/naive", "h2o/naive [seed:91000000]"], table.Rows.Take(2).Select(r => (string)r[0]!));
        Assert.Contains(table.Rows, r => (string)r[0]! == "(full attention score) [seed:91000000]");
        Assert.Contains("2 curves", Assert.Throws<ArgumentException>(() => SweepAnalysis.CriticalFootprints([fixedRows[1], heldOut[1]], fixedRows)).Message);
    }

    [Fact]
    public void Category_points_carry_their_score_interval()
    {
        var rows = new[]
        {
            Scored("h2o/naive", "p=0.5", "json_kv", "Recall", 0.5, 1, 0, 1, 1),
            Scored("h2o/naive", "p=0.5", "niah_mk", "Recall", 0.5, 1, 1, 0, 0, 1, 0),
        };
        var p = Assert.Single(SweepAnalysis.CategoryPoints(rows));
        Assert.Equal(Statistics.CategoryMean([rows[0].ExampleScores!, rows[1].ExampleScores!]), p.ScoreEstimate);
        Assert.Equal(p.Score, p.ScoreEstimate!.Value, 12);
        Assert.Null(Assert.Single(SweepAnalysis.CategoryPoints(rows.Select(r => r with { ExampleScores = null }))).ScoreEstimate);
    }

    [Fact]
    public void Naive_and_patched_are_compared_pairwise_on_the_same_examples()
    {
        // Patched gets right what naive does, plus five more of 20; the examples differ a lot from each other.
        double[] naive = [1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0];
        var patched = naive.Select((x, i) => i is 2 or 3 or 5 or 7 or 8 ? 1.0 : x).ToArray();
        var a = new[] { Scored("pyramidkv/patched", "pyramidkv;schedule=patched;evict=0.5;rule=accounting;chunk=1024", "rag", "RAG", 0.5, patched) };
        var b = new[] { Scored("pyramidkv/naive", "pyramidkv;schedule=naive;evict=0.5;rule=accounting;chunk=1024", "rag", "RAG", 0.5, naive) };
        var c = Assert.Single(SweepAnalysis.Compare(a, b));
        Assert.Equal(("RAG", "p=0.5", 4096, 1024), (c.Category, c.Point, c.Context, c.Chunk));
        Assert.Equal(0.25, c.Paired.Value, 12);
        Assert.Equal(patched.Average(), c.A, 12);
        // Pairing sees that patched never does worse: its interval excludes 0, the unpaired one does not.
        Assert.True(c.Paired.Lo > 0 && c.Unpaired.Lo < 0 && c.Paired.Hi - c.Paired.Lo < c.Unpaired.Hi - c.Unpaired.Lo, $"paired {c.Paired}, unpaired {c.Unpaired}");
        Assert.Empty(SweepAnalysis.Compare(a, b.Select(r => r with { ExampleScores = null })));
        // One curve at two chunk sizes: matched only when asked to leave the chunk out, and then with A's chunk.
        var small = a.Select(r => r with { Chunk = 256, MethodConfig = r.MethodConfig.Replace("chunk=1024", "chunk=256") }).ToArray();
        Assert.Empty(SweepAnalysis.Compare(small, a));
        var across = Assert.Single(SweepAnalysis.Compare(small, b, matchChunk: false));
        Assert.Equal((256, 0.25), (across.Chunk, Math.Round(across.Paired.Value, 12)));
        Assert.Throws<ArgumentException>(() => SweepAnalysis.Compare(small.Concat(a), b, matchChunk: false));
    }

    /// <summary>Knob lists for a grid: ("bits", [2, 4, 8]).</summary>
    private static Dictionary<string, IReadOnlyList<object>> Lists(params (string Name, int[] Values)[] lists) =>
        lists.ToDictionary(l => l.Name, l => (IReadOnlyList<object>)l.Values.Cast<object>().ToList());
}
