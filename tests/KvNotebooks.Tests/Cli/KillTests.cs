using System.Diagnostics;
using System.Security.Cryptography;
using KvNotebooks.Evaluation;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Cli;

/// <summary>
/// A long command killed with SIGKILL (no handler runs, no finally block) at random moments, then run again:
/// each run resumes, nothing already completed is lost, and the final outputs equal those of a run that was never
/// interrupted. Adding a command is one <see cref="KillCase"/> in <see cref="Cases"/>.
/// </summary>
public sealed class KillTests : IDisposable
{
    /// <summary>A resumable command: how to prepare its inputs in a folder, its arguments there, how far it has
    /// come (completed steps or rows, read from its outputs), and its outputs in a comparable form (timings removed).</summary>
    public sealed record KillCase(
        string Name,
        Action<string> Prepare,
        Func<string, string[]> Args,
        Func<string, int> Progress,
        Func<string, IReadOnlyDictionary<string, string>> Outputs);

    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-kill").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static string Kvnb => Path.Combine(AppContext.BaseDirectory, "kvnb.dll");

    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    /// <summary>CSV text without the columns named (wall-clock measures differ from run to run).</summary>
    private static string WithoutColumns(string path, params string[] drop)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0) return "";
        var header = lines[0].Split(',');
        var keep = Enumerable.Range(0, header.Length).Where(i => !drop.Contains(header[i])).ToArray();
        return string.Join('\n', lines.Select(l => { var f = l.Split(','); return string.Join(',', keep.Where(i => i < f.Length).Select(i => f[i])); }));
    }

    private const string TrainConfig = """
        {
          "model": {"vocab_size": 576, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 512, "tie_word_embeddings": true},
          "seed": 5, "warmup_steps": 2, "checkpoint_every": 2, "eval_every": 3, "eval_examples": 1, "log_every": 1, "threads": 1,
          "stages": [{"length": 128, "batch": 1, "steps": 8, "lr": 0.003, "tasks": {"niah_mk": 1, "copy": 1}},
                     {"length": 160, "batch": 1, "steps": 6, "lr": 0.002, "end_lr": 0.001}]
        }
        """;

    /// <summary>Checkpointed step of a run folder (0 before the first checkpoint).</summary>
    private static int CheckpointStep(string dir)
    {
        string path = Path.Combine(dir, "run", "checkpoint.bin");
        if (!File.Exists(path)) return 0;
        using var r = new BinaryReader(File.OpenRead(path));
        r.ReadString(); r.ReadInt32();
        return r.ReadInt32();
    }

    private static readonly KillCase Train = new(
        "train",
        dir => File.WriteAllText(Path.Combine(dir, "train.json"), TrainConfig),
        dir => ["train", "--config", Path.Combine(dir, "train.json"), "--out", Path.Combine(dir, "run"), "--threads", "1"],
        CheckpointStep,
        dir =>
        {
            string run = Path.Combine(dir, "run");
            return new Dictionary<string, string>
            {
                ["checkpoint.bin"] = Sha(Path.Combine(run, "checkpoint.bin")),
                ["model.safetensors"] = Sha(Path.Combine(run, "model", "model.safetensors")),
                ["config.json"] = File.ReadAllText(Path.Combine(run, "model", "config.json")),
                ["tokenizer.json"] = Sha(Path.Combine(run, "model", "tokenizer.json")),
                ["train_config.json"] = File.ReadAllText(Path.Combine(run, "train_config.json")),
                ["loss.csv"] = WithoutColumns(Path.Combine(run, "loss.csv"), "seconds"),
                ["eval.csv"] = File.ReadAllText(Path.Combine(run, "eval.csv")),
            };
        });

    private static readonly KillCase Sweep = new(
        "sweep",
        dir =>
        {
            var config = new LlamaConfig
            {
                VocabSize = 576, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, HeadDim = 8,
                MaxPositionEmbeddings = 1024, BosTokenId = 2, EosTokenId = 3,
            };
            LlamaWeights.Random(config, seed: 9, std: 0.2f).Save(Path.Combine(dir, "model"));
        },
        dir => ["sweep", "--model", Path.Combine(dir, "model"), "--model-name", "tiny", "--methods", "full,streaming,snapkv", "--windows", "64",
                "--contexts", "256", "--tasks", "niah_mk,json_kv,rag", "--examples", "2", "--threads", "1",
                "--eval-dir", Path.Combine(dir, "eval"), "--csv", Path.Combine(dir, "rows.csv")],
        dir => File.Exists(Path.Combine(dir, "rows.csv")) ? EvalRow.Load(Path.Combine(dir, "rows.csv")).Count : 0,
        dir =>
        {
            string csv = Path.Combine(dir, "rows.csv");
            Assert.NotEmpty(SweepSidecar.Load(KvNotebooks.Evaluation.Sweep.SidecarPath(csv)));   // every invocation recorded, file intact
            return new Dictionary<string, string>
            {
                ["rows.csv"] = WithoutColumns(csv, "prefill_tokens_per_second", "decode_tokens_per_second", "seconds", "peak_rss_bytes"),
            };
        });

    private static readonly KillCase Masks = new(
        "masks",
        dir =>
        {
            string model = Path.Combine(dir, "model");
            KvNotebooks.Tests.Training.TrainableLlamaTests.RandomWeights(KvNotebooks.Tests.HeadMasks.TinyMaskModel.Config(), 3, std: 0.3f).Save(model);
            var config = KvNotebooks.Tests.HeadMasks.TinyMaskModel.Train("prulong", model, steps: 14) with { TargetSparsity = 0.5 };
            File.WriteAllText(Path.Combine(dir, "masks.json"), config.ToJson());
        },
        dir => ["masks", "train", "--config", Path.Combine(dir, "masks.json"), "--out", Path.Combine(dir, "run"), "--threads", "1"],
        CheckpointStep,
        dir =>
        {
            string run = Path.Combine(dir, "run");
            return new Dictionary<string, string>
            {
                ["checkpoint.bin"] = Sha(Path.Combine(run, "checkpoint.bin")),
                ["masks.tsv"] = File.ReadAllText(Path.Combine(run, "masks.tsv")),
                ["log.csv"] = WithoutColumns(Path.Combine(run, "log.csv"), "seconds"),
                ["gates.csv"] = File.ReadAllText(Path.Combine(run, "gates.csv")),
            };
        });

    /// <summary>Every resumable command.</summary>
    public static TheoryData<string> Cases() => new(AllCases.Select(c => c.Name));

    private static readonly KillCase[] AllCases = [Train, Sweep, Masks];

    private static (int Code, string Output) RunToEnd(string[] args)
    {
        using var p = Start(args);
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    private static Process Start(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Kvnb);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["KVNB_DEBUG"] = "1";
        return Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Sigkill_at_random_moments_loses_nothing_and_changes_nothing(string name)
    {
        var c = AllCases.Single(k => k.Name == name);

        // The uninterrupted run, timed.
        string reference = Path.Combine(_dir, "reference");
        Directory.CreateDirectory(reference);
        c.Prepare(reference);
        var clock = Stopwatch.StartNew();
        var (code, output) = RunToEnd(c.Args(reference));
        double seconds = clock.Elapsed.TotalSeconds;
        Assert.True(code == 0, output);
        var expected = c.Outputs(reference);

        // The same work, killed with SIGKILL three times at random moments of its span, then finished.
        string killed = Path.Combine(_dir, "killed");
        Directory.CreateDirectory(killed);
        c.Prepare(killed);
        var rng = new Random(name.Length * 7919);
        int progress = 0;
        for (int kill = 0; kill < 3; kill++)
        {
            using var p = Start(c.Args(killed));
            p.StandardOutput.ReadToEndAsync();
            p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(seconds * (0.15 + 0.8 * rng.NextDouble()))))
            {
                p.Kill(entireProcessTree: true);   // SIGKILL on Unix
                p.WaitForExit();
            }
            int now = c.Progress(killed);
            Assert.True(now >= progress, $"{name}: progress went back from {progress} to {now} after kill {kill + 1}");
            progress = now;
        }
        (code, output) = RunToEnd(c.Args(killed));
        Assert.True(code == 0, output);
        Assert.Equal(c.Progress(reference), c.Progress(killed));
        var actual = c.Outputs(killed);
        foreach (var (file, content) in expected) Assert.True(content == actual[file], $"{name}: {file} differs from the uninterrupted run's");
    }
}
