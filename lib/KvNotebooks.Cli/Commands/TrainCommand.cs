using System.CommandLine;
using System.Runtime.InteropServices;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb train</c>: trains a model from scratch on the task suite, resumably.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "Training config (JSON: model, seed, stages…), e.g. data/configs/train-kvnb-small.json", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder: checkpoint, logs and the exported model; an existing run there is resumed", Required = true };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Stop after this many more steps (the run stays resumable)" };
        var threads = new Option<int?>("--threads") { Description = "Kernel threads (default: the config's)" };
        var init = new Option<string?>("--init") { Description = "Start from this model folder's weights instead of a random initialisation (sets the config's init_model; fine-tuning, e.g. data/models/kvnb-small)" };
        var ship = new Option<string?>("--ship") { Description = "When stopped, also write the model with its training config and logs to this folder (e.g. data/models/kvnb-small)" };
        var cmd = new Command("train", "Train a model on the synthetic long-context tasks (answer-token loss), resuming from the run folder") { config, output, maxSteps, threads, init, ship };
        cmd.SetAction(p => Cli.Run(() =>
        {
            var cfg = PretrainConfig.Load(p.GetValue(config)!);
            if (p.GetValue(init) is { } from) cfg = cfg with { InitModel = from };
            int? t = p.GetValue(threads);
            if (t is < 1) throw new ArgumentException("--threads must be ≥ 1");
            int? max = p.GetValue(maxSteps);
            if (max is < 0) throw new ArgumentException("--max-steps must be ≥ 0");
            var trainer = new Pretrainer(cfg, p.GetValue(output)!, new ComputeContext(t ?? cfg.Threads)) { Log = line => Console.WriteLine(line) };
            trainer.OpenRun();
            using var cts = new CancellationTokenSource();
            // Ctrl-C or SIGTERM (a background job, a scheduler): finish the step, checkpoint, exit.
            void Stop(PosixSignalContext ctx) { ctx.Cancel = true; cts.Cancel(); Console.WriteLine("stopping after this step (checkpoint follows)…"); }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            long parameters = trainer.Model.Parameters.Sum(x => (long)x.Value.Length);
            Console.WriteLine($"training {cfg.Model.NumLayers} layers, d {cfg.Model.HiddenSize}, {cfg.Model.NumHeads}/{cfg.Model.NumKvHeads} heads ({parameters:N0} parameters), " +
                              $"{cfg.TotalSteps} steps in {cfg.Stages.Length} stages; starting at step {trainer.Step}");
            trainer.Train(max ?? int.MaxValue, cts.Token);
            Console.WriteLine($"stopped at step {trainer.Step}/{cfg.TotalSteps}; model in {trainer.ModelDir}");
            if (p.GetValue(ship) is { } dir)
            {
                trainer.Ship(dir);
                Console.WriteLine($"shipped the model, train_config.json, loss.csv and eval.csv to {dir}");
            }
            return 0;
        }));
        return cmd;
    }
}
