using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using KvNotebooks.Model;
using KvNotebooks.Training;

namespace KvNotebooks.HeadMasks;

/// <summary>One logged step. <see cref="Objective"/> is the method's own loss (Duo: distillation MSE; PruLong: LM
/// cross-entropy; Locret: smooth L1), <see cref="Reg"/> its regulariser (Duo: L1 on the gates; PruLong: the Lagrangian
/// λ1(s − t) + λ2(s − t)²; Locret: the smoothness term); <see cref="Loss"/> = Objective + weight·Reg as optimised.
/// <see cref="Overlap"/> (Locret): the share of each head's top 10 % of true scores that the prediction also ranks in its
/// top 10 % (Locret's "acc"). Null cells (a method without a target or λ) are empty in the CSV.</summary>
public sealed record MaskStepRow(int Step, double Loss, double Objective, double Reg, double? Sparsity, double? Target,
    double? Lambda1, double? Lambda2, double Lr, double GradNorm, double Seconds, double? Overlap = null);

/// <summary>
/// What the three trainers share (<c>kvnb masks train</c>): a run folder that resumes, logs and a checkpoint. The model is
/// loaded from <see cref="MaskTrainConfig.Model"/>; every random draw of step k derives from (seed, k), so a run stopped
/// and resumed from its checkpoint gives the loss sequence of an uninterrupted one. The run folder holds config.json (the
/// resolved config), checkpoint.bin (the trained parameters, their AdamW moments and the step, written atomically),
/// log.csv (one row per step), gates.csv (the method's per-head parameters after each step, for Duo and PruLong),
/// summary.json, and the artefacts of <see cref="Export"/>; all are refreshed at every checkpoint.
/// </summary>
public abstract class MaskTrainer
{
    private readonly List<string> _logLines = [], _gateLines = [];

    protected MaskTrainer(MaskTrainConfig config, string runDir)
    {
        Config = config;
        RunDir = runDir;
        Weights = LlamaWeights.Load(config.Model);
        if (config.Length > Weights.Config.MaxPositionEmbeddings)
            throw new InvalidDataException($"length {config.Length} exceeds the model's max_position_embeddings {Weights.Config.MaxPositionEmbeddings}");
        Model = new TrainableLlama(Weights, new ComputeContext(config.Threads));
        Model.SetFrozen(_ => true, true);
        Data = new MaskData(config.Data, config.Seed, config.Length, config.Passkeys);
    }

    /// <summary>The trainer of the config's method.</summary>
    public static MaskTrainer Create(MaskTrainConfig config, string runDir) => config.Method switch
    {
        "duo" => new DuoTrainer(config, runDir),
        "prulong" => new PruLongTrainer(config, runDir),
        "locret" => new RetainingHeadTrainer(config, runDir),
        _ => throw new InvalidDataException($"unknown method '{config.Method}' (duo, prulong or locret)"),
    };

    public MaskTrainConfig Config { get; }
    public string RunDir { get; }
    public LlamaWeights Weights { get; }
    public TrainableLlama Model { get; }
    public MaskData Data { get; }
    /// <summary>The optimizer over the trained parameters (built by the subclass; its group learning rates are set per step).</summary>
    public abstract AdamW Optimizer { get; }
    /// <summary>Updates done so far (the next step to run, 0-based).</summary>
    public int Step => Optimizer.StepCount;
    /// <summary>Every logged row of this run, resumed ones included.</summary>
    public IReadOnlyList<MaskStepRow> Rows => _rows;
    private readonly List<MaskStepRow> _rows = [];
    /// <summary>Progress lines (the CLI sends them to stderr).</summary>
    public Action<string>? Log { get; set; }

    private string CheckpointPath => Path.Combine(RunDir, "checkpoint.bin");
    private string LogPath => Path.Combine(RunDir, "log.csv");
    private string GatesPath => Path.Combine(RunDir, "gates.csv");

    /// <summary>Names of the objective and regulariser columns of log.csv.</summary>
    protected abstract (string Objective, string Reg) ColumnNames { get; }
    /// <summary>The per-head values logged in gates.csv after each step (null: none).</summary>
    protected virtual float[]? GateValues() => null;
    /// <summary>One optimisation step (0-based step <paramref name="k"/>): loss, gradients, the optimizer update.</summary>
    protected abstract MaskStepRow TrainStep(int k);
    /// <summary>Writes the run's artefacts (masks, heads, weights) into <paramref name="dir"/>.</summary>
    public abstract void Export(string dir);
    /// <summary>Method-specific numbers for summary.json.</summary>
    protected virtual IEnumerable<(string Key, object Value)> SummaryExtras() => [];

    /// <summary>Starts a run in an empty folder or resumes the one there; a folder holding a different run is refused.</summary>
    public void OpenRun()
    {
        Directory.CreateDirectory(RunDir);
        string cfgPath = Path.Combine(RunDir, "config.json");
        if (File.Exists(cfgPath))
        {
            var old = MaskTrainConfig.Load(cfgPath);
            if (old.CoreJson() != Config.CoreJson())
                throw new InvalidOperationException($"{RunDir} holds a run with a different config ({cfgPath}); use another --out folder");
        }
        if (File.Exists(CheckpointPath))
        {
            Checkpoint.Load(CheckpointPath, Optimizer);
            Log?.Invoke($"resumed from {CheckpointPath} at step {Step}");
        }
        AtomicFile.WriteAllText(cfgPath, Config.ToJson());
        ReadLog(LogPath, _logLines, Header());
        ReadLog(GatesPath, _gateLines, GatesHeader());
        foreach (var line in _logLines.Skip(1)) _rows.Add(ParseRow(line));
    }

    /// <summary>Runs until <see cref="MaskTrainConfig.Steps"/> or <paramref name="maxSteps"/> more steps, or until
    /// cancelled (the step in progress finishes, then a checkpoint).</summary>
    public void Train(int maxSteps = int.MaxValue, CancellationToken cancel = default)
    {
        int total = Config.Steps;
        int stop = (int)Math.Min(total, (long)Step + maxSteps);
        var session = Stopwatch.StartNew();
        int startStep = Step;
        while (Step < stop && !cancel.IsCancellationRequested)
        {
            var sw = Stopwatch.StartNew();
            int k = Step;
            var row = TrainStep(k);
            if (!double.IsFinite(row.Loss) || !double.IsFinite(row.GradNorm))
                throw new InvalidOperationException($"step {k + 1}: loss {row.Loss}, gradient norm {row.GradNorm}: training diverged");
            row = row with { Step = Step, Seconds = sw.Elapsed.TotalSeconds };
            _rows.Add(row);
            _logLines.Add(Format(row));
            if (GateValues() is { } g)
                _gateLines.Add(Step.ToString(CultureInfo.InvariantCulture) + "," + string.Join(",", g.Select(x => x.ToString("G6", CultureInfo.InvariantCulture))));
            double perStep = session.Elapsed.TotalSeconds / (Step - startStep);
            var eta = TimeSpan.FromSeconds(perStep * (total - Step));
            Log?.Invoke(Progress(row, total, eta));
            if (Step % Config.CheckpointEvery == 0 || Step == total) SaveAll();
        }
        if (Step % Config.CheckpointEvery != 0 && Step != total) SaveAll();
    }

    private string Progress(MaskStepRow r, int total, TimeSpan eta)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(ci, $"step {r.Step}/{total}  loss {r.Loss:F4} ({ColumnNames.Objective} {r.Objective:F4}, {ColumnNames.Reg} {r.Reg:F4})");
        if (r.Sparsity is { } s) sb.Append(ci, $"  sparsity {s:F3}");
        if (r.Target is { } t) sb.Append(ci, $" → {t:F3}");
        if (r.Lambda1 is { } l1) sb.Append(ci, $"  λ1 {l1:F3} λ2 {r.Lambda2:F3}");
        if (r.Overlap is { } o) sb.Append(ci, $"  top-10% overlap {o:F3}");
        sb.Append(ci, $"  lr×{r.Lr:G3}  {r.Seconds:F1} s/step  ETA {(int)eta.TotalMinutes}:{eta.Seconds:D2}");
        return sb.ToString();
    }

    /// <summary>Logs, artefacts and summary, then the checkpoint, each written atomically. In this order a kill between
    /// them leaves a checkpoint no newer than the files beside it: the resumed run starts from the checkpoint, drops the
    /// log rows past its step (<see cref="ReadLog"/>), redoes those steps and rewrites every file. (Checkpoint first, a
    /// kill after it lost the newest log rows for good, and at the last step left masks.tsv from an earlier checkpoint,
    /// since a run resumed at its last step has nothing left to do.)</summary>
    public void SaveAll()
    {
        AtomicFile.WriteAllText(LogPath, string.Join('\n', _logLines) + "\n");
        if (_gateLines.Count > 1 || GateValues() is not null) AtomicFile.WriteAllText(GatesPath, string.Join('\n', _gateLines) + "\n");
        Export(RunDir);
        AtomicFile.WriteAllText(Path.Combine(RunDir, "summary.json"), Summary());
        Checkpoint.Save(CheckpointPath, Optimizer);
    }

    /// <summary>Steps, logged seconds (the sum over steps, resumed runs included), steps/s, and the last tenth of the
    /// losses averaged (at least one row).</summary>
    public string Summary()
    {
        double seconds = _rows.Sum(r => r.Seconds);
        int tail = Math.Max(1, _rows.Count / 10);
        var last = _rows.TakeLast(tail).ToArray();
        var d = new Dictionary<string, object>
        {
            ["method"] = Config.Method, ["steps"] = Step, ["of_steps"] = Config.Steps,
            ["seconds"] = Math.Round(seconds, 1), ["steps_per_second"] = _rows.Count == 0 ? 0 : Math.Round(_rows.Count / seconds, 4),
            ["tokens_per_step"] = Config.Length * Config.Batch,
            ["final_loss_mean_last_tenth"] = last.Length == 0 ? double.NaN : Math.Round(last.Average(r => r.Loss), 6),
            ["final_objective_mean_last_tenth"] = last.Length == 0 ? double.NaN : Math.Round(last.Average(r => r.Objective), 6),
        };
        foreach (var (k, v) in SummaryExtras()) d[k] = v;
        return JsonSerializer.Serialize(d, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }) + "\n";
    }

    /// <summary>Sets every group's learning rate to its base rate times the schedule's factor for update k + 1; returns the factor.</summary>
    protected double SetLearningRates(AdamWGroup[] groups, double[] baseLr, int k)
    {
        double f = Config.LrFactor(k + 1);
        for (int g = 0; g < groups.Length; g++) groups[g] = groups[g] with { Lr = baseLr[g] * f };
        return f;
    }

    private string Header() => $"step,loss,{ColumnNames.Objective},{ColumnNames.Reg},sparsity,target,lambda1,lambda2,lr_factor,grad_norm,seconds,top_overlap";

    private string GatesHeader()
    {
        var sb = new StringBuilder("step");
        for (int l = 0; l < Weights.Config.NumLayers; l++)
            for (int h = 0; h < Weights.Config.NumKvHeads; h++) sb.Append(",L").Append(l).Append('H').Append(h);
        return sb.ToString();
    }

    private static string Format(MaskStepRow r)
    {
        static string N(double? x) => x is { } v ? v.ToString("G6", CultureInfo.InvariantCulture) : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{r.Step},{N(r.Loss)},{N(r.Objective)},{N(r.Reg)},{N(r.Sparsity)},{N(r.Target)},{N(r.Lambda1)},{N(r.Lambda2)},{N(r.Lr)},{N(r.GradNorm)},{r.Seconds:F3},{N(r.Overlap)}");
    }

    private static MaskStepRow ParseRow(string line)
    {
        var c = line.Split(',');
        double? N(int i) => c[i].Length == 0 ? null : double.Parse(c[i], CultureInfo.InvariantCulture);
        return new MaskStepRow(int.Parse(c[0], CultureInfo.InvariantCulture), N(1)!.Value, N(2)!.Value, N(3)!.Value, N(4), N(5), N(6), N(7), N(8)!.Value, N(9)!.Value, N(10)!.Value, N(11));
    }

    /// <summary>The rows of a log up to the checkpoint's step (rows a killed run wrote after it are dropped: they will be
    /// written again, identically).</summary>
    private void ReadLog(string path, List<string> lines, string header)
    {
        lines.Clear();
        lines.Add(header);
        if (!File.Exists(path)) return;
        foreach (var line in File.ReadLines(path).Skip(1))
            if (int.TryParse(line.AsSpan(0, Math.Max(0, line.IndexOf(','))), out int s) && s <= Step) lines.Add(line);
    }
}
