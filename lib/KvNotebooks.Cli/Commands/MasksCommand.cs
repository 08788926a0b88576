using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using KvNotebooks.HeadMasks;
using KvNotebooks.Kernels;
using KvNotebooks.Model;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb masks</c>: train DuoAttention / PruLong head masks and Locret's retaining heads (resumably), and
/// binarize a scores file at a head sparsity.</summary>
public static class MasksCommand
{
    public static Command Create()
    {
        var cmd = new Command("masks", "Head masks (DuoAttention, PruLong) and Locret's retaining heads: train, export");
        cmd.Subcommands.Add(Train());
        cmd.Subcommands.Add(Export());
        return cmd;
    }

    private static Command Train()
    {
        var config = new Option<string>("--config") { Description = "Mask training config (JSON), e.g. data/configs/masks/prulong-t0.7.json", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder: config, checkpoint, logs (CSV), masks; an existing run there is resumed", Required = true };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Stop after this many more steps (the run stays resumable)" };
        var threads = new Option<int?>("--threads") { Description = "Kernel threads (default: the config's)" };
        var cmd = new Command("train", "Train head masks (method duo or prulong) or retaining heads (locret) on the frozen model; run the same command again to resume")
            { config, output, maxSteps, threads };
        cmd.SetAction(p => Cli.Run(() =>
        {
            var cfg = MaskTrainConfig.Load(p.GetValue(config)!);
            int? t = p.GetValue(threads);
            if (t is < 1) throw new ArgumentException("--threads must be ≥ 1");
            int? max = p.GetValue(maxSteps);
            if (max is < 0) throw new ArgumentException("--max-steps must be ≥ 0");
            if (t is { } threadCount) cfg = cfg with { Threads = threadCount };   // not part of what a resume must match
            var trainer = MaskTrainer.Create(cfg, p.GetValue(output)!);
            trainer.Log = line => Console.Error.WriteLine(line);
            trainer.OpenRun();
            using var cts = new CancellationTokenSource();
            // Ctrl-C or SIGTERM: finish the step, checkpoint, exit.
            void Stop(PosixSignalContext ctx) { ctx.Cancel = true; cts.Cancel(); Console.Error.WriteLine("stopping after this step (checkpoint follows)…"); }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            Console.Error.WriteLine($"{cfg.Method}: {cfg.Steps} steps of {cfg.Batch} × {cfg.Length} tokens on {cfg.Model}, data {string.Join(", ", cfg.Data.Select(kv => $"{kv.Key} {kv.Value:G3}"))}, " +
                $"streaming sink {cfg.Streaming.Sink} window {cfg.Streaming.Window} block {cfg.Streaming.Block}, {cfg.Threads} threads; starting at step {trainer.Step}");
            trainer.Train(max ?? int.MaxValue, cts.Token);
            Console.WriteLine($"stopped at step {trainer.Step}/{cfg.Steps}; run folder {trainer.RunDir}");
            return 0;
        }));
        return cmd;
    }

    private static Command Export()
    {
        var masks = new Option<string>("--masks") { Description = "Scores TSV (layers × KV heads, higher = full), e.g. a run's masks.tsv", Required = true };
        var sparsity = new Option<double>("--head-sparsity") { Description = "Fraction of (layer, KV head) pairs made streaming", Required = true };
        var rule = new Option<string>("--rule") { Description = "Tie-breaking: duo (seeded noise ≤ 1e-6) or prulong (rank, seeded random ties)", DefaultValueFactory = _ => "duo" };
        var seed = new Option<int>("--seed") { Description = "Seed of the tie-breaking", DefaultValueFactory = _ => HeadScores.DefaultSeed };
        var model = new Option<string?>("--model") { Description = "Check the shape against this model folder" };
        var output = new Option<string>("--out") { Description = "The 0/1 TSV to write (1 = full head), readable by --method headmask", Required = true };
        var cmd = new Command("export", "Binarize a scores TSV at a head sparsity: exactly round(s · layers · KV heads) streaming heads") { masks, sparsity, rule, seed, model, output };
        cmd.SetAction(p => Cli.Run(() =>
        {
            var r = p.GetValue(rule) switch
            {
                "duo" => TieBreak.Duo,
                "prulong" => TieBreak.PruLong,
                var x => throw new ArgumentException($"--rule must be duo or prulong (got '{x}')"),
            };
            var cfg = p.GetValue(model) is { } m ? LlamaConfig.Load(Path.Combine(m, "config.json")) : null;
            var scores = HeadScores.Load(p.GetValue(masks)!, cfg);
            var full = scores.Binarize(p.GetValue(sparsity), r, p.GetValue(seed));
            HeadScores.SaveMask(p.GetValue(output)!, full);
            int streaming = scores.Count - full.Cast<bool>().Count(f => f);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{streaming} of {scores.Count} heads streaming (head sparsity {(double)streaming / scores.Count:F3}) → {p.GetValue(output)}"));
            return 0;
        }));
        return cmd;
    }
}
