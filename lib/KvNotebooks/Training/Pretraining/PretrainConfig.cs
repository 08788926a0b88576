using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

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

    public static PretrainConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"training config '{path}' does not exist", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates; errors name the file and the field.</summary>
    public static PretrainConfig Parse(string text, string source)
    {
        JsonObject root;
        try { root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                     ?? throw new InvalidDataException($"{source}: not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})"); }
        var model = root["model"] as JsonObject ?? throw new InvalidDataException($"{source}: missing the \"model\" object (a Hugging Face config.json)");
        root.Remove("model");
        PretrainConfig cfg;
        try { cfg = root.Deserialize<PretrainConfig>(Json) ?? throw new InvalidDataException($"{source}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: {e.Message}"); }
        cfg = cfg with { Model = LlamaConfig.FromJson(model.ToJsonString(), $"{source} (model)") };
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

    public void Validate(string source = "training config")
    {
        void Require(bool ok, string what) { if (!ok) throw new InvalidDataException($"{source}: {what}"); }
        Model.Validate(source);
        Require(Model.VocabSize >= Vocabulary.Default.Size, $"model vocab_size {Model.VocabSize} is smaller than the task vocabulary ({Vocabulary.Default.Size})");
        Require(Stages.Length > 0, "no stages");
        Require(WarmupSteps >= 0 && Threads >= 1 && CheckpointEvery >= 1 && EvalEvery >= 1 && LogEvery >= 1 && EvalExamples >= 0,
            "warmup_steps ≥ 0, threads, checkpoint_every, eval_every, log_every ≥ 1 and eval_examples ≥ 0 are required");
        for (int i = 0; i < Stages.Length; i++)
        {
            var s = Stages[i];
            Require(s.Length >= 32 && s.Batch >= 1 && s.Steps >= 1 && s.Lr > 0, $"stage {i + 1}: length ≥ 32, batch ≥ 1, steps ≥ 1 and lr > 0 are required");
            Require(s.Length <= Model.MaxPositionEmbeddings, $"stage {i + 1}: length {s.Length} exceeds max_position_embeddings {Model.MaxPositionEmbeddings}");
            foreach (var t in StageTasks(i))
                Require(s.Length >= t.Task.MinLength, $"stage {i + 1}: task {t.Task.Name} needs sequences of at least {t.Task.MinLength} tokens");
            foreach (var (name, q) in s.Questions ?? [])
            {
                var task = TaskSuite.Get(name);
                Require(q >= 1, $"stage {i + 1}: questions for {name} must be ≥ 1");
                try { task.Generate(0, s.Length, q); }
                catch (ArgumentException e) { throw new InvalidDataException($"{source}: stage {i + 1}: {q} questions of {name} at {s.Length} tokens: {e.Message}"); }
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
