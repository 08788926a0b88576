using System.Numerics.Tensors;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tasks;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.Evaluation;

/// <summary>What one context asked two questions gave: each answer and its score, the entries each
/// head held when the second question arrived, and the run's measurements.</summary>
public sealed record FollowUpResult(string Task, int Seed, int[] AnswerA, double ScoreA, int[] AnswerB, double ScoreB,
    long EntriesWhenAskedB, RunResult Run);

/// <summary>
/// The case the paper leaves aside (it puts multi-turn conversations out of its scope): one
/// compressed cache asked a second, different question. The prompt is context + question A; the method
/// evicts while pre-filling as usual (a query-aware method such as SnapKV scores KVs with question A's
/// queries); the model answers A; then &lt;eos&gt; and question B are fed as further steps (the format the model
/// was trained on: every question, answer and &lt;eos&gt; in turn), and the model answers B from whatever the cache
/// kept. Nothing is evicted after the pre-fill unless the method evicts while decoding.
/// </summary>
public static class FollowUp
{
    /// <summary>Seed base of the two-question examples (apart from the fixed sets' and from training's).</summary>
    public const int SeedBase = EvalSet.DefaultSeed + 1;

    /// <summary><paramref name="count"/> examples of <paramref name="task"/> with two questions about different
    /// keys of the same context (the generators pick distinct records), from fixed seeds.</summary>
    public static IReadOnlyList<TaskExample> Examples(LongContextTask task, int length, int count)
    {
        int ti = TaskSuite.All.ToList().IndexOf(task);
        return Enumerable.Range(0, count).Select(i => task.Generate(Pretrainer.SeedOf(SeedBase, ti, i), length, 2)).ToList();
    }

    /// <summary>Asks question A, then question B, of one session under <paramref name="method"/>.</summary>
    public static FollowUpResult Run(LlamaModel model, EvalMethod method, LongContextTask task, TaskExample ex)
    {
        if (ex.Questions.Length < 2) throw new ArgumentException($"{task.Name} example {ex.Seed} has one question; a follow-up needs two");
        using var session = method.NewSession(model);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        session.Prefill(ex.Prompt(0));
        double prefill = sw.Elapsed.TotalSeconds;
        int eos = Vocabulary.Default.EosId, max = task.MaxAnswerTokens(ex.Length);
        var a = Answer(session, max);
        // The answer ends with <eos>, then question B follows: each fed as a decode step.
        int[] next = [eos, .. ex.Questions[1].Question];
        for (int i = 0; i < next.Length; i++) session.Decode(next[i], needLogits: i == next.Length - 1);
        long held = session.Cache.LiveEntries;
        var b = Answer(session, max);
        double total = sw.Elapsed.TotalSeconds;
        int n = ex.Prompt(0).Length;
        // Every step after the prompt is a generated row of the run (answer A, <eos>, question B, answer B).
        var run = session.Result(n, b, prefill, total - prefill) with { Method = method.Name, GenTokens = session.Meter.Rows - n };
        return new FollowUpResult(task.Name, ex.Seed, a, task.Score(ex.Questions[0], a), b, task.Score(ex.Questions[1], b), held, run);
    }

    /// <summary>Greedy tokens until &lt;eos&gt; (not fed) or <paramref name="max"/> tokens (each fed), as <see cref="Evaluator.RunExample"/>.</summary>
    private static int[] Answer(Session session, int max) => session.Generate(max, Vocabulary.Default.EosId);
}
