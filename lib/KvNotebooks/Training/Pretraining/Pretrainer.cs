using System.Diagnostics;
using System.Globalization;
using KvNotebooks.Kernels;
using KvNotebooks.Model;
using KvNotebooks.Tasks;
using KvNotebooks.Validation;

namespace KvNotebooks.Training.Pretraining;

/// <summary>One logged training step.</summary>
public sealed record TrainLogRow(int Step, int Stage, int Length, int Batch, long Tokens, double Loss, double Lr, double GradNorm, double Seconds);

/// <summary>
/// Trains a model from scratch on the task suite (<c>kvnb train</c>). The loss is the cross-entropy of
/// the answer tokens only (what the probe in TRAINING-NOTES.md found necessary for retrieval to form).
/// Everything a step uses derives from (seed, step), so a run resumes from its last checkpoint with
/// exactly the loss sequence it would have had. The run folder holds:
/// train_config.json, checkpoint.bin (weights + AdamW state + step, atomic), loss.csv, eval.csv, and
/// model/ (config.json, model.safetensors, tokenizer.json), refreshed at every checkpoint. loss.csv has one
/// row per step; its seconds column is the wall time since the previous log line (every log_every steps).
/// </summary>
public sealed class Pretrainer
{
    private readonly PretrainConfig _cfg;
    private readonly string _dir;
    private readonly AdamWGroup[] _groups;

    /// <param name="compute">Threads and kernel paths of the run (default: the config's <c>threads</c>).</param>
    public Pretrainer(PretrainConfig config, string runDir, ComputeContext? compute = null)
    {
        _cfg = config;
        _dir = runDir;
        // A run that has a checkpoint resumes from it: init_model is read only when the run starts.
        Weights = config.InitModel is { } init && !File.Exists(Path.Combine(runDir, "checkpoint.bin"))
            ? LoadInit(init, config.Model)
            : WeightInit.Normal(config.Model, config.InitSeed, config.InitStd);
        Model = new TrainableLlama(Weights, compute ?? new ComputeContext(config.Threads));
        _groups = AdamW.DefaultGroups(1.0, config.WeightDecay, config.Beta1, config.Beta2);
        // The groups array is read at every step: setting its Lr per step gives the stage schedule.
        Optimizer = new AdamW(Model.Parameters, _groups, LrSchedule.Constant, config.ClipNorm);
    }

    /// <summary>The weights of <paramref name="dir"/>, which must have every tensor <paramref name="model"/>
    /// needs, in the same shapes.</summary>
    private static LlamaWeights LoadInit(string dir, LlamaConfig model)
    {
        var w = LlamaWeights.Load(dir);
        var want = LlamaWeights.ExpectedShapes(model);
        var have = LlamaWeights.ExpectedShapes(w.Config);
        var differ = want.Where(kv => !have.TryGetValue(kv.Key, out var s) || !s.SequenceEqual(kv.Value)).Select(kv => kv.Key)
            .Concat(have.Keys.Where(k => !want.ContainsKey(k))).ToList();
        if (differ.Count > 0)
            throw new InputException(Path.Combine(dir, "config.json"), "", $"init_model {dir}: its architecture differs from the training config's model " +
                $"(tensors {string.Join(", ", differ.Take(4))}{(differ.Count > 4 ? $" and {differ.Count - 4} more" : "")})");
        return new LlamaWeights { Config = model, Embedding = w.Embedding, Layers = w.Layers, FinalNorm = w.FinalNorm,
                                  LmHead = model.TieWordEmbeddings ? w.Embedding : w.LmHead };
    }

    public LlamaWeights Weights { get; }
    public TrainableLlama Model { get; }
    public AdamW Optimizer { get; }
    /// <summary>Steps done (the next step to run is this one, 0-based).</summary>
    public int Step => Optimizer.StepCount;
    public Action<string>? Log { get; set; }

    private string CheckpointPath => Path.Combine(_dir, "checkpoint.bin");
    private string LossPath => Path.Combine(_dir, "loss.csv");
    private string EvalPath => Path.Combine(_dir, "eval.csv");
    public string ModelDir => Path.Combine(_dir, "model");

    /// <summary>Starts a run in an empty folder, or resumes the one there (its config must be the same).</summary>
    public void OpenRun()
    {
        Directory.CreateDirectory(_dir);
        string cfgPath = Path.Combine(_dir, "train_config.json");
        string json = _cfg.ToJson();
        PretrainConfig? old = File.Exists(cfgPath) ? PretrainConfig.Load(cfgPath) : null;
        if (File.Exists(CheckpointPath))
        {
            Checkpoint.Load(CheckpointPath, Optimizer);
            Log?.Invoke($"resumed from {CheckpointPath} at step {Step}");
        }
        if (old is not null && old.ToJson() != json)
        {
            // Only the curriculum ahead of the checkpoint may change: the steps already taken must be the
            // ones this config would take, so that the saved config still reproduces the run from scratch.
            if (PretrainConfig.FirstDifferentStep(old, _cfg) is int diff && diff < Step)
                throw new InputException(cfgPath, "stages", $"{_dir} holds a run whose training config differs from this one at step {diff + 1}, " +
                    $"before its checkpoint (step {Step}); use another --out folder");
            Log?.Invoke($"the curriculum changes from step {PretrainConfig.FirstDifferentStep(old, _cfg) + 1}: continuing with the new config");
        }
        AtomicFile.WriteAllText(cfgPath, json);
        TruncateLog(LossPath, "step,stage,length,batch,tokens,loss,lr,grad_norm,seconds");
        TruncateLog(EvalPath, "step,length,task,exact,token_accuracy,examples");
    }

    /// <summary>Rows written after the checkpoint (by a run that was killed) are dropped; they will be
    /// written again, identically.</summary>
    private void TruncateLog(string path, string header)
    {
        var keep = new List<string> { header };
        if (File.Exists(path))
            foreach (var line in File.ReadLines(path).Skip(1))
                if (int.TryParse(line.AsSpan(0, Math.Max(0, line.IndexOf(','))), out int s) && s <= Step) keep.Add(line);
        AtomicFile.WriteAllText(path, string.Join('\n', keep) + "\n");
    }

    /// <summary>Runs until the curriculum ends or <paramref name="maxSteps"/> more steps were done.</summary>
    public void Train(int maxSteps = int.MaxValue, CancellationToken cancel = default)
    {
        int total = _cfg.TotalSteps;
        var sw = Stopwatch.StartNew();
        long tokensSinceLog = 0;
        double lossSum = 0; int lossCount = 0;
        int stop = (int)Math.Min(total, (long)Step + maxSteps);
        using var loss = new StreamWriter(LossPath, append: true);
        while (Step < stop && !cancel.IsCancellationRequested)
        {
            int step = Step;
            var (s, _) = _cfg.StageOf(step);
            var stage = _cfg.Stages[s];
            double lr = _cfg.LearningRate(step);
            for (int g = 0; g < _groups.Length; g++) _groups[g] = _groups[g] with { Lr = lr };

            var (tokens, positions, targets) = Batch(step);
            Model.ZeroGrad();
            double l = Model.ForwardBackward(tokens, positions, targets, 1f, stage.Batch);
            double norm = Optimizer.Step();
            if (!double.IsFinite(l) || !double.IsFinite(norm))
                throw new InputException(Path.Combine(_dir, "train_config.json"), $"stages[{s}].lr",
                    $"step {step + 1}: loss {l}, gradient norm {norm} — training diverged; lower the learning rate");
            tokensSinceLog += tokens.Length;
            lossSum += l; lossCount++;
            loss.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Step},{s + 1},{stage.Length},{stage.Batch},{tokens.Length},{l:G6},{lr:G4},{norm:G4},{sw.Elapsed.TotalSeconds:F2}"));
            if (Step % _cfg.LogEvery == 0 || Step == stop)
            {
                Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"step {Step}/{total} stage {s + 1} L={stage.Length} loss {lossSum / lossCount:F4} lr {lr:G3} |g| {norm:F2} {tokensSinceLog / sw.Elapsed.TotalSeconds:F0} tok/s"));
                tokensSinceLog = 0; lossSum = 0; lossCount = 0; sw.Restart();
            }
            // Evaluate before checkpointing: rows of a step after the last checkpoint are re-made on resume.
            if (Step % _cfg.EvalEvery == 0 || Step == total) Evaluate(s);
            if (Step % _cfg.CheckpointEvery == 0 || Step == total)
            {
                loss.Flush();
                SaveCheckpoint();
            }
        }
        loss.Flush();
        if (Step % _cfg.CheckpointEvery != 0 && Step != total) SaveCheckpoint();
    }

    /// <summary>The sequences of a step, concatenated: every draw derives from (seed, step, index).</summary>
    public (int[] Tokens, int[] Positions, int[] Targets) Batch(int step)
    {
        var (s, _) = _cfg.StageOf(step);
        var stage = _cfg.Stages[s];
        var tasks = _cfg.StageTasks(s);
        double totalWeight = tasks.Sum(t => t.Weight);
        var tokens = new List<int>(stage.Length * stage.Batch);
        var pos = new List<int>();
        var tgt = new List<int>();
        for (int b = 0; b < stage.Batch; b++)
        {
            int seed = SeedOf(_cfg.Seed, step, b);
            var rng = new Random(seed);
            double u = rng.NextDouble() * totalWeight;
            var task = tasks[^1].Task;
            foreach (var (t, w) in tasks) { if (u < w) { task = t; break; } u -= w; }
            var ex = task.Generate(seed, stage.Length, stage.QuestionsFor(task));
            var (tk, p, y) = ex.TrainingSequence();
            int offset = tokens.Count;
            tokens.AddRange(tk);
            pos.AddRange(p.Select(x => x + offset));
            tgt.AddRange(y);
        }
        if (pos.Count == 0) throw new InvalidOperationException($"step {step + 1}: the batch has no loss positions (a task generated no targets)");
        return (tokens.ToArray(), pos.ToArray(), tgt.ToArray());
    }

    /// <summary>A well-mixed 31-bit seed from (run seed, step, index).</summary>
    public static int SeedOf(int seed, int step, int index)
    {
        ulong z = (ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)step * 0xBF58476D1CE4E5B9UL + (ulong)index * 0x94D049BB133111EBUL + 1;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)((z ^ (z >> 31)) & 0x7FFFFFFF);
    }

    /// <summary>Exports the model, then writes the checkpoint. In this order a kill between the two leaves a model
    /// ahead of the checkpoint, which the resumed run rewrites identically; the other order could leave a finished
    /// run (checkpoint at the last step) with a stale model that nothing would refresh.</summary>
    public void SaveCheckpoint()
    {
        ExportModel(ModelDir);
        Checkpoint.Save(CheckpointPath, Optimizer);
    }

    /// <summary>The shipped form of the run: the model in Hugging Face layout (config.json, model.safetensors,
    /// tokenizer.json) plus train_config.json, loss.csv and eval.csv, written into <paramref name="dir"/>.</summary>
    public void Ship(string dir)
    {
        ExportModel(dir);
        foreach (var name in new[] { "train_config.json", "loss.csv", "eval.csv" })
        {
            string src = Path.Combine(_dir, name);
            if (File.Exists(src)) AtomicFile.WriteAllText(Path.Combine(dir, name), File.ReadAllText(src));
        }
    }

    /// <summary>Writes the model in Hugging Face layout with the task tokenizer.</summary>
    public void ExportModel(string dir)
    {
        var cfg = Weights.Config with { BosTokenId = Vocabulary.Default.BosId, EosTokenId = Vocabulary.Default.EosId };
        new LlamaWeights { Config = cfg, Embedding = Weights.Embedding, Layers = Weights.Layers, FinalNorm = Weights.FinalNorm, LmHead = Weights.LmHead }.Save(dir);
        WordTokenizer.Default.Save(Path.Combine(dir, "tokenizer.json"));
    }

    /// <summary>Teacher-forced check on fixed examples of the stage's tasks at the stage's length.</summary>
    public void Evaluate(int stage)
    {
        if (_cfg.EvalExamples == 0) return;
        int length = _cfg.Stages[stage].Length;
        var rows = new List<string>();
        var summary = new List<string>();
        foreach (var (task, _) in _cfg.StageTasks(stage))
        {
            var r = TeacherForced.Evaluate(Model, task, length, _cfg.EvalExamples, seedBase: 1_000_000);
            rows.Add(string.Create(CultureInfo.InvariantCulture, $"{Step},{length},{task.Name},{r.Exact:F4},{r.TokenAccuracy:F4},{r.Examples}"));
            summary.Add($"{task.Name} {r.Exact:P0}");
        }
        File.AppendAllLines(EvalPath, rows);
        Log?.Invoke($"eval @ step {Step}, L={length}: {string.Join(", ", summary)}");
    }
}
