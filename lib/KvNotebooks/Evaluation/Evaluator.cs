using System.Diagnostics;
using System.Numerics.Tensors;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Evaluation;

/// <summary>A KV method as evaluated: a short name, its full configuration as text (both go into every
/// CSV row), and how to start a fresh session for one example (methods may keep per-sequence state).</summary>
public sealed record EvalMethod(string Name, string Config, Func<LlamaModel, Session> NewSession)
{
    /// <summary>A configured method at a chunking: name = its curve (<see cref="MethodSpec.Label"/>), config = its
    /// canonical line (<see cref="MethodSpec.Describe"/>), sessions with the storage it asks for.</summary>
    public static EvalMethod For(MethodSpec spec, Chunking chunking) =>
        new(spec.Label, spec.Describe(chunking), m => new Session(m, spec, chunking));
}

/// <summary>What one example gave: the generated answer, its score, and the run's measurements.</summary>
public sealed record ExampleResult(string Task, int Seed, int[] Generated, double Score, RunResult Run)
{
    /// <summary>The run's timeline, one record per pre-fill chunk and decode step (for <c>KvTimeline</c> figures).</summary>
    public IReadOnlyList<StepRecord> Steps { get; init; } = [];
}

/// <summary>
/// Runs tasks through the real engine: chunked pre-fill of the prompt with the method evicting as it
/// goes, greedy decoding until &lt;eos&gt; or the task's answer budget, scoring, and the measured
/// footprint, peak KV and bytes of each run (docs/footprint.md; averaged over examples as the paper does).
/// </summary>
public static class Evaluator
{
    /// <summary>One example: pre-fill, greedy generation, score.</summary>
    public static ExampleResult RunExample(LlamaModel model, EvalMethod method, LongContextTask task, TaskExample ex)
    {
        using var session = method.NewSession(model);
        var run = session.Run(ex.Prompt(), task.MaxAnswerTokens(ex.Length), stopToken: Vocabulary.Default.EosId) with { Method = method.Name };
        return new ExampleResult(task.Name, ex.Seed, run.Generated, task.Score(ex.Questions[0], run.Generated), run) { Steps = session.Meter.Steps };
    }

    /// <summary>Every example of one task: the mean score and measurements as one CSV row, with each example's score.
    /// <paramref name="exampleSet"/> names where the examples come from (<see cref="EvalRow.FixedSet"/>: the first ones of
    /// the fixed set; <see cref="EvalRow.SeedSet"/> for generated ones), in order.</summary>
    public static EvalRow EvaluateTask(LlamaModel model, string modelName, EvalMethod method, Chunking chunk, LongContextTask task,
        IReadOnlyList<TaskExample> examples, Action<ExampleResult>? onExample = null, string exampleSet = EvalRow.FixedSet)
    {
        if (examples.Count == 0) throw new ArgumentException($"no examples of task {task.Name}");
        var results = new List<ExampleResult>();
        bool measuresMemory = Bench.ProcessMemory.TryResetPeak();
        var sw = Stopwatch.StartNew();
        foreach (var ex in examples)
        {
            var r = RunExample(model, method, task, ex);
            results.Add(r);
            onExample?.Invoke(r);
        }
        double Mean(Func<ExampleResult, double> f) => results.Average(f);
        int length = examples[0].Length;
        return new EvalRow
        {
            Model = modelName, Commit = GitInfo.Commit(), Method = method.Name, MethodConfig = method.Config,
            Context = length, Chunk = chunk.Size, Task = task.Name, Category = task.Category, Examples = results.Count,
            Score = Mean(r => r.Score), Chance = task.ChanceScore(length),
            Footprint = Mean(r => r.Run.Footprint), PeakKv = Mean(r => r.Run.PeakKv),
            PeakKvEntries = Mean(r => r.Run.PeakEntries), PeakKvBytes = Mean(r => r.Run.PeakKvBytes),
            PrefillTokensPerSecond = results.Sum(r => r.Run.PromptTokens) / results.Sum(r => r.Run.PrefillSeconds),
            DecodeTokensPerSecond = results.Sum(r => r.Run.GenTokens) / Math.Max(1e-9, results.Sum(r => r.Run.DecodeSeconds)),
            Seconds = sw.Elapsed.TotalSeconds,
            ExampleSet = exampleSet, ExampleScores = new ExampleScores(results.Select(r => r.Score)),
            PeakRssBytes = measuresMemory ? Bench.ProcessMemory.PeakResidentBytes() : null,
        };
    }

    /// <summary>Category scores: the mean of the category's task scores (docs/footprint.md, "Aggregation").</summary>
    public static IReadOnlyList<(string Category, double Score, double Footprint)> Categories(IEnumerable<EvalRow> rows) =>
        TaskSuite.Categories
            .Select(c => (c, rows.Where(r => r.Category == c).ToList()))
            .Where(x => x.Item2.Count > 0)
            .Select(x => (x.c, x.Item2.Average(r => r.Score), x.Item2.Average(r => r.Footprint)))
            .ToList();
}
