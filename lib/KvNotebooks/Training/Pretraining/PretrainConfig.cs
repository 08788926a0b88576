using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using KvNotebooks.Model;
using KvNotebooks.Tasks;
using KvNotebooks.Validation;

namespace KvNotebooks.Training.Pretraining;

/// <summary>One stage of the curriculum: sequences of <see cref="Length"/> tokens, <see cref="Batch"/> per
/// step, for <see cref="Steps"/> steps at learning rate <see cref="Lr"/> (constant, or linear to
/// <see cref="EndLr"/> over the stage). <see cref="Tasks"/> weights the task mix (null: every task equally).</summary>
public sealed record TrainStage
{
    public int Length { get; init; }
    public int Batch { get; init; } = 1;
    public int Steps { get; init; }
    public double Lr { get; init; }
    public double? EndLr { get; init; }
    public Dictionary<string, double>? Tasks { get; init; }
    /// <summary>Questions per training sequence for some tasks (default: the task's own number). Long
    /// contexts can ask more: the context costs the same, the answers add supervision.</summary>
    public Dictionary<string, int>? Questions { get; init; }

    public int QuestionsFor(LongContextTask task) => Questions is not null && Questions.TryGetValue(task.Name, out int q) ? q : task.TrainingQuestions;
}

/// <summary>
/// What <c>kvnb train</c> runs: the model's architecture (a Hugging Face config.json object under
/// "model"), its initialisation, AdamW's settings and the curriculum of stages. Plain data read from a
/// JSON file with snake_case keys; the file is copied into the run folder so a run documents itself.
/// </summary>
public sealed record PretrainConfig
{
    [JsonIgnore] public LlamaConfig Model { get; init; } = null!;
    public int Seed { get; init; } = 1;
    /// <summary>A model folder (Hugging Face layout) whose weights the run starts from instead of a random
    /// initialisation: fine-tuning, e.g. more stages on the shipped model. The optimizer starts fresh and the
    /// steps count from 0. Null (the default): from scratch.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? InitModel { get; init; }
    public int InitSeed { get; init; } = 1;
    public float InitStd { get; init; } = 0.02f;
    public int WarmupSteps { get; init; } = 50;
    public double WeightDecay { get; init; } = 0.0;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double ClipNorm { get; init; } = 1.0;
    /// <summary>Kernel threads (1 lets two runs share a 2-core machine).</summary>
    public int Threads { get; init; } = 1;
    public int CheckpointEvery { get; init; } = 100;
    public int EvalEvery { get; init; } = 250;
    /// <summary>Examples per task in the teacher-forced evaluation logged every <see cref="EvalEvery"/> steps.</summary>
    public int EvalExamples { get; init; } = 8;
    public int LogEvery { get; init; } = 10;
    public TrainStage[] Stages { get; init; } = [];

    public int TotalSteps => Stages.Sum(s => s.Steps);

    /// <summary>The stage of a 0-based step and the step's index within it.</summary>
    public (int Stage, int StepInStage) StageOf(int step)
    {
        for (int s = 0; s < Stages.Length; s++)
        {
            if (step < Stages[s].Steps) return (s, step);
            step -= Stages[s].Steps;
        }
        return (Stages.Length - 1, Stages[^1].Steps);
    }

    /// <summary>Learning rate of a 0-based step: the stage's rate (linearly moving to EndLr across the
    /// stage), times a linear warmup over the first <see cref="WarmupSteps"/> steps of the run.</summary>
    public double LearningRate(int step)
    {
        var (s, i) = StageOf(step);
        var st = Stages[s];
        double lr = st.EndLr is { } end ? st.Lr + (end - st.Lr) * i / Math.Max(1, st.Steps - 1) : st.Lr;
        return step < WarmupSteps ? lr * (step + 1) / WarmupSteps : lr;
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    /// <summary>Training configs larger than this are refused before reading (real ones are a few KB).</summary>
    public const long MaxFileBytes = 1 << 20;
    // Caps on what a config may ask for, checked before anything is generated or allocated.
    public const int MaxStages = 10_000, MaxLength = 1 << 20, MaxBatch = 4096, MaxTokensPerStep = 1 << 22,
        MaxQuestions = 1024, MaxThreads = 1024, MaxEvalExamples = 100_000;

    public static PretrainConfig Load(string path) => Parse(InputFile.ReadAllText(path, "training config", MaxFileBytes), path);

    /// <summary>Parses and validates; errors are <see cref="InputException"/>s naming the file and the field
    /// (<c>stages[3].tasks.rag</c>).</summary>
    public static PretrainConfig Parse(string text, string source)
    {
        LlamaConfig model;
        using (var doc = StrictJson.Parse(text, source, JsonRules.HandWritten))
        {
            var rootField = new JsonField(doc.RootElement, source);
            if (rootField.Kind != JsonValueKind.Object) throw rootField.Error($"must be a JSON object{rootField.Got()}");
            if (rootField["model"].Kind != JsonValueKind.Object)
                throw rootField["model"].Error("missing the \"model\" object (a Hugging Face config.json)");
            model = LlamaConfig.FromJson(rootField["model"]);
        }
        var root = (JsonObject)JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })!;
        root.Remove("model");
        PretrainConfig cfg;
        try { cfg = root.Deserialize<PretrainConfig>(Json)!; }
        catch (JsonException e) { throw new InputException(source, StrictJson.Field("", e.Path), StrictJson.Describe(e), e); }
        cfg = cfg with { Model = model };
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>The config as JSON (model first), the form saved in the run folder.</summary>
    public string ToJson()
    {
        var o = JsonSerializer.SerializeToNode(this, Json)!.AsObject();
        var result = new JsonObject { ["model"] = JsonNode.Parse(Model.ToJson()) };
        foreach (var (k, v) in o) result[k] = v?.DeepClone();
        return result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>The first 0-based step at which two configs train differently (model, optimizer, data,
    /// stage or learning rate), or null if they never do. Logging and evaluation settings do not count.</summary>
    public static int? FirstDifferentStep(PretrainConfig a, PretrainConfig b)
    {
        static PretrainConfig Core(PretrainConfig c) => c with { Stages = [], CheckpointEvery = 1, EvalEvery = 1, EvalExamples = 0, LogEvery = 1, Threads = 1 };
        if (Core(a).ToJson() != Core(b).ToJson()) return 0;
        int n = Math.Min(a.TotalSteps, b.TotalSteps);
        for (int step = 0; step < n; step++)
        {
            var (sa, _) = a.StageOf(step);
            var (sb, _) = b.StageOf(step);
            var x = a.Stages[sa]; var y = b.Stages[sb];
            bool sameTasks = (x.Tasks is null && y.Tasks is null) || (x.Tasks is not null && y.Tasks is not null
                && x.Tasks.Count == y.Tasks.Count && x.Tasks.All(kv => y.Tasks.TryGetValue(kv.Key, out double w) && w == kv.Value));
            bool sameQuestions = TaskSuite.All.All(t => x.QuestionsFor(t) == y.QuestionsFor(t));
            if (x.Length != y.Length || x.Batch != y.Batch || !sameTasks || !sameQuestions || a.LearningRate(step) != b.LearningRate(step)) return step;
        }
        return a.TotalSteps == b.TotalSteps ? null : n;
    }

    /// <summary>Throws <see cref="InputException"/> naming the first field out of range (snake_case JSON paths).</summary>
    public void Validate(string source = "training config")
    {
        void Require(bool ok, string field, string what) { if (!ok) throw new InputException(source, field, what); }
        Require(Model is not null, "model", "missing the \"model\" object (a Hugging Face config.json)");
        Model!.Validate(source, "model");
        Require(Model.VocabSize >= Vocabulary.Default.Size, "model.vocab_size", $"model vocab_size {Model.VocabSize} is smaller than the task vocabulary ({Vocabulary.Default.Size})");
        Require(float.IsFinite(InitStd) && InitStd > 0 && InitStd <= 1, "init_std", $"must be a finite number in (0, 1] (got {InitStd})");
        Require(WarmupSteps >= 0, "warmup_steps", $"must be ≥ 0 (got {WarmupSteps})");
        Require(double.IsFinite(WeightDecay) && WeightDecay is >= 0 and <= 10, "weight_decay", $"must be a finite number in [0, 10] (got {WeightDecay})");
        Require(Beta1 is >= 0 and < 1, "beta1", $"must be in [0, 1) (got {Beta1})");
        Require(Beta2 is >= 0 and < 1, "beta2", $"must be in [0, 1) (got {Beta2})");
        Require(double.IsFinite(ClipNorm), "clip_norm", $"must be finite (≤ 0 disables clipping; got {ClipNorm})");
        Require(Threads is >= 1 and <= MaxThreads, "threads", $"must be in [1, {MaxThreads}] (got {Threads})");
        Require(CheckpointEvery >= 1, "checkpoint_every", $"must be ≥ 1 (got {CheckpointEvery})");
        Require(EvalEvery >= 1, "eval_every", $"must be ≥ 1 (got {EvalEvery})");
        Require(LogEvery >= 1, "log_every", $"must be ≥ 1 (got {LogEvery})");
        Require(EvalExamples is >= 0 and <= MaxEvalExamples, "eval_examples", $"must be in [0, {MaxEvalExamples}] (got {EvalExamples})");
        Require(InitModel is null || InitModel.Length > 0, "init_model", "must be a model folder or null");
        Require(Stages is not null, "stages", "must be a list of stages");
        Require(Stages!.Length > 0, "stages", "no stages");
        Require(Stages.Length <= MaxStages, "stages", $"{Stages.Length} stages; at most {MaxStages}");
        long total = 0;
        for (int i = 0; i < Stages.Length; i++)
        {
            var s = Stages[i];
            string at = $"stages[{i}]", st = $"stage {i + 1}";
            Require(s is not null, at, $"{st}: must be an object, not null");
            Require(s!.Length >= 32 && s.Batch >= 1 && s.Steps >= 1 && s.Lr > 0,
                at + (s.Length < 32 ? ".length" : s.Batch < 1 ? ".batch" : s.Steps < 1 ? ".steps" : ".lr"),
                $"{st}: length ≥ 32, batch ≥ 1, steps ≥ 1 and lr > 0 are required");
            Require(s.Length <= Model.MaxPositionEmbeddings, at + ".length", $"{st}: length {s.Length} exceeds max_position_embeddings {Model.MaxPositionEmbeddings}");
            Require(s.Length <= MaxLength, at + ".length", $"{st}: length {s.Length} exceeds {MaxLength}");
            Require(s.Batch <= MaxBatch, at + ".batch", $"{st}: batch {s.Batch} exceeds {MaxBatch}");
            Require((long)s.Length * s.Batch <= MaxTokensPerStep, at + ".batch", $"{st}: length × batch = {(long)s.Length * s.Batch} tokens per step exceeds {MaxTokensPerStep}");
            Require(double.IsFinite(s.Lr) && s.Lr <= 10, at + ".lr", $"{st}: lr must be a finite number in (0, 10] (got {s.Lr})");
            Require(s.EndLr is null || (double.IsFinite(s.EndLr.Value) && s.EndLr >= 0 && s.EndLr <= 10), at + ".end_lr", $"{st}: end_lr must be a finite number in [0, 10] (got {s.EndLr})");
            total += s.Steps;
            Require(total <= int.MaxValue, at + ".steps", $"{st}: the stages add up to more than {int.MaxValue} steps");
            if (s.Tasks is not null)
            {
                foreach (var (name, w) in s.Tasks)
                {
                    Require(TaskSuite.All.Any(t => t.Name == name), $"{at}.tasks.{name}",
                        $"{st}: unknown task '{StrictJson.Printable(name)}'; tasks: {string.Join(", ", TaskSuite.All.Select(t => t.Name))}");
                    Require(double.IsFinite(w) && w >= 0, $"{at}.tasks.{name}", $"{st}: a task weight must be a finite number ≥ 0 (got {w})");
                }
                Require(s.Tasks.Values.Any(w => w > 0), at + ".tasks", $"{st}: no task has a positive weight");
            }
            foreach (var t in StageTasks(i))
                Require(s.Length >= t.Task.MinLength, at + ".length", $"{st}: task {t.Task.Name} needs sequences of at least {t.Task.MinLength} tokens");
            foreach (var (name, q) in s.Questions ?? [])
            {
                string qf = $"{at}.questions.{name}";
                Require(TaskSuite.All.Any(t => t.Name == name), qf, $"{st}: unknown task '{StrictJson.Printable(name)}'");
                Require(q >= 1, qf, $"{st}: questions for {name} must be ≥ 1");
                Require(q <= MaxQuestions, qf, $"{st}: questions for {name} must be ≤ {MaxQuestions} (got {q})");
                var task = TaskSuite.Get(name);
                try { task.Generate(0, s.Length, q); }
                catch (ArgumentException e) { throw new InputException(source, qf, $"{st}: {q} questions of {name} at {s.Length} tokens: {e.Message}"); }
            }
        }
    }

    /// <summary>The tasks of a stage with their weights (unknown names are an error).</summary>
    public IReadOnlyList<(LongContextTask Task, double Weight)> StageTasks(int stage)
    {
        var w = Stages[stage].Tasks;
        if (w is null) return TaskSuite.All.Select(t => (t, 1.0)).ToArray();
        var list = w.Where(kv => kv.Value > 0).Select(kv => (TaskSuite.Get(kv.Key), kv.Value)).ToArray();
        if (list.Length == 0) throw new InvalidDataException($"stage {stage + 1}: no task has a positive weight");
        return list;
    }
}
