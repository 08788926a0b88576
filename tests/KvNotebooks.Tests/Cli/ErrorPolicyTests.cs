using KvNotebooks.Cli;
using KvNotebooks.Model;
using KvNotebooks.Validation;
using KvNotebooks.Validation.Fuzz;

namespace KvNotebooks.Tests.Cli;

/// <summary>The CLI's error policy: bad input exits 2 with one line naming the file and the field; a bug exits 1
/// with one line saying it is a bug and where; NaN/Inf is refused unless --allow-nonfinite.</summary>
[Collection(KvNotebooks.Tests.Notebooks.NotebookCollection.Name)]
public sealed class ErrorPolicyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-errors").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static (int code, string stdout, string stderr) Kvnb(params string[] args) => CliTests.Kvnb(args);

    private string Model(Action<LlamaWeights>? edit = null)
    {
        string dir = Path.Combine(_dir, "m" + Guid.NewGuid().ToString("N")[..6]);
        var w = LlamaWeights.Random(LibraryFuzzFormats.TinyConfig, seed: 1);
        edit?.Invoke(w);
        w.Save(dir);
        return dir;
    }

    private static void OneLineError(string stderr, params string[] parts)
    {
        Assert.StartsWith("kvnb: error: ", stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        foreach (var p in parts) Assert.Contains(p, stderr);
    }

    [Fact]
    public void A_bad_config_exits_2_naming_the_file_and_the_key()
    {
        string model = Model();
        string config = Path.Combine(model, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"LlamaForCausalLM\"", "null"));   // "architectures": [null]
        var (code, _, stderr) = Kvnb("logits", "--model", model, "--tokens", "1 2", "--out", Path.Combine(_dir, "l.safetensors"));
        Assert.Equal(2, code);
        OneLineError(stderr, config, "architectures[0]", "must be a string");
    }

    [Fact]
    public void A_training_config_with_null_stages_exits_2_naming_the_field()
    {
        string path = Path.Combine(_dir, "t.json");
        File.WriteAllText(path, """{"model": {"vocab_size": 576, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4}, "stages": null}""");
        var (code, _, stderr) = Kvnb("train", "--config", path, "--out", Path.Combine(_dir, "run"));
        Assert.Equal(2, code);
        OneLineError(stderr, path, ": stages: ");
    }

    [Fact]
    public void Nan_weights_exit_2_unless_allowed_and_nan_logits_exit_3_with_a_warning()
    {
        string model = Model(w => w.FinalNorm[0] = float.NaN);
        string output = Path.Combine(_dir, "l.safetensors");
        var refused = Kvnb("logits", "--model", model, "--tokens", "1 2", "--out", output);
        Assert.Equal(2, refused.code);
        OneLineError(refused.stderr, "model.safetensors", "model.norm.weight", "NaN");

        var allowed = Kvnb("logits", "--model", model, "--tokens", "1 2", "--out", output, "--allow-nonfinite");
        Assert.Equal(0, allowed.code);
        Assert.Contains("kvnb: warning:", allowed.stderr);

        // Finite weights whose logits overflow: the file is written, the exit code says the results hold ±Inf.
        string huge = Model(w => Array.Fill(w.LmHead, 3e38f));
        var inf = Kvnb("logits", "--model", huge, "--tokens", "1 2", "--out", output);
        Assert.Equal(KvNotebooks.Cli.Commands.Cli.NonFiniteExitCode, inf.code);
        Assert.Contains("values are NaN or ±Inf", inf.stderr);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void Bugs_exit_1_with_one_line_and_user_errors_exit_2()
    {
        var (o, e) = (Console.Out, Console.Error);
        var se = new StringWriter();
        Console.SetError(se);
        try
        {
            Assert.Equal(1, KvNotebooks.Cli.Commands.Cli.Run(() => throw new InvalidOperationException("boom")));
            string bug = se.ToString();
            Assert.StartsWith("kvnb: internal error (a bug, please report it): InvalidOperationException: boom at ", bug);
            Assert.Contains(nameof(Bugs_exit_1_with_one_line_and_user_errors_exit_2), bug);
            Assert.DoesNotContain("   at ", bug);
            // .NET's own argument checks are bugs; ours are a rejected value.
            Assert.Equal(1, KvNotebooks.Cli.Commands.Cli.Run(() => new List<int>()[3]));
            Assert.Equal(2, KvNotebooks.Cli.Commands.Cli.Run(() => throw new ArgumentOutOfRangeException("x", "--x must be positive")));
            Assert.Equal(2, KvNotebooks.Cli.Commands.Cli.Run(() => throw new InputException("f.json", "a.b", "must be 1")));
            Assert.Equal(1, KvNotebooks.Cli.Commands.Cli.Run(() => throw new EndOfStreamException()));
        }
        finally { Console.SetOut(o); Console.SetError(e); }
    }

    [Fact]
    public void Kvnb_fuzz_reports_counts_and_exits_0_when_no_rule_is_broken()
    {
        var (code, stdout, stderr) = Kvnb("fuzz", "--format", "config,results", "--count", "40", "--json");
        Assert.True(code == 0, stderr);
        var json = System.Text.Json.JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(80, json.GetProperty("inputs").GetInt32());
        Assert.Equal(0, json.GetProperty("violations").GetInt32());
        foreach (var f in json.GetProperty("formats").EnumerateArray())
            Assert.Equal(40, f.GetProperty("typedErrors").GetInt32() + f.GetProperty("correctLoads").GetInt32());
        Assert.Equal(2, Kvnb("fuzz", "--format", "nope").code);
    }
}
