using System.Text.Json;
using KvNotebooks.Evaluation;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.Cli;

/// <summary>
/// A method is one file: a scorer defined only here, in the test project, with its descriptor, shows up in the CLI
/// (its knob as an option of run, eval, footprint and sweep; <c>kvnb methods list</c>), in sweep grids and in the
/// accountant, with no line changed in the library.
/// </summary>
[Collection(KvNotebooks.Tests.Notebooks.NotebookCollection.Name)]
public sealed class RegistryTests : IDisposable
{
    /// <summary>Keeps the entries whose position has a given parity (and then the earliest): trivial, but any
    /// scorer would do — the point is where it is declared.</summary>
    private sealed class ParityScorer(int parity) : IKvScorer
    {
        public string Name => "parity";
        public ScoreQueries Queries => ScoreQueries.Window;
        public void Score(in ScoreInput input, Span<float> scores)
        {
            for (int i = input.From; i < input.To; i++)
                scores[i - input.From] = (input.Cache.Position(i) % 2 == parity ? 1f : 0f) - i * 1e-6f;
        }
    }

    private static readonly Knob<int> Parity = new("parity", "parity", 0, "parity: which positions to keep (0 even, 1 odd)",
        p => p is 0 or 1 ? null : "must be 0 or 1");

    private static readonly MethodDescriptor ParityMethod = MethodDescriptor.TokenScorer("parity",
        "Keeps the KVs at even (or odd) positions", [Parity], s => new ParityScorer(s.Get(Parity)));

    private static readonly MethodRegistry Registry = MethodRegistry.BuiltIn.With(ParityMethod);

    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-registry").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static (int code, string stdout, string stderr) Kvnb(params string[] args) => CliTests.Invoke(Registry, args);

    [Fact]
    public void A_method_declared_in_the_test_project_is_listed_run_counted_and_swept()
    {
        // kvnb methods list
        var list = Kvnb("methods", "list", "--json");
        Assert.Equal(0, list.code);
        var entry = JsonDocument.Parse(list.stdout).RootElement.EnumerateArray().Single(m => m.GetProperty("name").GetString() == "parity");
        Assert.Equal("--parity", entry.GetProperty("knobs")[0].GetProperty("option").GetString());
        // The built-in registry does not know it: nothing global was changed.
        Assert.Null(MethodRegistry.BuiltIn.Find("parity"));

        // kvnb run with its knob, as the engine runs it; kvnb footprint counts the same run.
        string cfg = Path.Combine(_dir, "config.json");
        KvNotebooks.Tests.Inference.TinyModels.Config().Save(cfg);
        string model = Path.Combine(_dir, "m");
        Assert.Equal(0, Kvnb("init", "--config", cfg, "--seed", "3", "--out", model).code);
        string tokens = string.Join(' ', KvNotebooks.Tests.Inference.TinyModels.Tokens(40, 37, seed: 5));
        var run = Kvnb("run", "--model", model, "--tokens", tokens, "--gen-tokens", "3", "--chunk", "12", "--method", "parity", "--parity", "1",
            "--schedule", "patched", "--evict", "0.5", "--obs-window", "4", "--json");
        Assert.True(run.code == 0, run.stderr);
        var measured = JsonDocument.Parse(run.stdout).RootElement;
        var expected = KvFootprint.Scheduled(new ChunkPlan(40, 12), 3, EvictionSchedule.Patched(EvictionBudget.FractionPlusWindow(0.5), 4));
        Assert.Equal(expected.Footprint, measured.GetProperty("footprint").GetDouble(), 12);
        var fp = Kvnb("footprint", "--method", "parity", "--parity", "1", "--schedule", "patched", "--evict", "0.5", "--obs-window", "4",
            "--prompt-tokens", "40", "--gen-tokens", "3", "--chunk", "12", "--json");
        Assert.True(fp.code == 0, fp.stderr);
        Assert.Equal(expected.Footprint, JsonDocument.Parse(fp.stdout).RootElement.GetProperty("footprint").GetDouble(), 12);
        // Its knob is refused where it does not belong, with the method that has it named.
        var wrong = Kvnb("run", "--model", model, "--tokens", tokens, "--method", "snapkv", "--parity", "1");
        Assert.Equal(2, wrong.code);
        Assert.Contains("--parity applies to parity", wrong.stderr);

        // Sweep grids: its knob is a sweep dimension, its configuration line carries it.
        var plan = new SweepGrid
        {
            Registry = Registry, Methods = ["full", "parity:naive"], Evicts = [0.5], Chunks = [128], Contexts = [256],
            Knobs = new Dictionary<string, IReadOnlyList<object>> { ["parity"] = [0, 1] }, Tasks = [TaskSuite.Get("niah_mk")], Examples = 1,
        }.Expand();
        Assert.Contains("parity;schedule=naive;evict=0.5;rule=accounting;obs=64;parity=1;gqa=shared;chunk=128", plan.Configs);
        Assert.Equal(3, plan.Configs.Count);
        var dry = Kvnb("sweep", "--model", model, "--methods", "full,parity:naive", "--parity", "0,1", "--evict", "0.5", "--chunks", "128",
            "--contexts", "256", "--tasks", "niah_mk", "--examples", "1", "--dry-run");
        Assert.True(dry.code == 0, dry.stderr);
        Assert.Contains("parity=0;", dry.stdout);
        Assert.Contains("parity=1;", dry.stdout);
    }

    [Fact]
    public void Every_built_in_method_is_listed_with_its_knobs_and_counted_or_refused_clearly()
    {
        var list = Kvnb("methods", "list");
        Assert.Equal(0, list.code);
        foreach (var m in MethodRegistry.BuiltIn.Methods)
            Assert.Contains(m.Name, list.stdout);
        var shape = new FootprintShape(4096, 16, Chunking.Of(1024));
        foreach (var m in MethodRegistry.BuiltIn.Methods.Where(m => m.Footprint is not null && !m.Knobs.Contains(HeadMask.MasksKnob)))
        {
            var f = m.Spec().Footprint(shape);
            Assert.InRange(f.Footprint, 0.0, 1.0);
            Assert.True(f.PeakKv > 0 && f.PeakKv <= 1.0 + 1e-12, $"{m.Name}: peak {f.PeakKv}");
        }
        Assert.Contains("--heads is needed", Assert.Throws<ArgumentException>(() => MethodSpec.Of("locret").Create(KvNotebooks.Tests.Inference.TinyModels.Config())).Message);
    }
}
