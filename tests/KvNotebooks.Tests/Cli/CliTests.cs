using System.Text.Json;
using KvNotebooks.Cli;
using KvNotebooks.Footprint;

namespace KvNotebooks.Tests.Cli;

[Collection(KvNotebooks.Tests.Notebooks.NotebookCollection.Name)]
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-cli").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static (int code, string stdout, string stderr) Kvnb(params string[] args)
    {
        var (o, e) = (Console.Out, Console.Error);
        var (so, se) = (new StringWriter(), new StringWriter());
        Console.SetOut(so);
        Console.SetError(se);
        try { return (Program.Main(args), so.ToString(), se.ToString()); }
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
        var r = JsonDocument.Parse(stdout).RootElement;
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
    [InlineData("footprint", "--method", "h2o", "--prompt-tokens", "100")]
    [InlineData("footprint", "--method", "full", "--prompt-tokens", "-3")]
    [InlineData("run", "--model", "/nonexistent/model", "--tokens", "1 2")]
    public void BadInputExitsWithTwoAndAMessage(params string[] args)
    {
        var (code, _, stderr) = Kvnb(args);
        Assert.Equal(2, code);
        Assert.StartsWith("kvnb: error:", stderr);
        Assert.DoesNotContain("   at ", stderr);
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
}
