using KvNotebooks.Tasks;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.HeadMasks;

/// <summary>One training sequence for the mask trainers: its tokens, the rows whose final hidden states DuoAttention
/// distils (<see cref="Rows"/>), and next-token targets for a cross-entropy loss (PruLong): row LossPositions[p] predicts
/// Targets[p]. <see cref="QaStart"/> is where the questions begin (the sequence length when there are none).</summary>
public sealed record MaskSequence(string Source, int[] Tokens, int[] Rows, int[] LossPositions, int[] Targets, int QaStart);

/// <summary>
/// The data the mask trainers draw, every sequence a function of (seed, step, index):
/// <list type="bullet">
/// <item><c>natural_text</c>: our "pre-training text" (<see cref="NaturalText"/>: filler with verbatim repeats of earlier
/// spans); every token is a target and every row is distilled. With <c>task_documents</c> it is the pre-training mix
/// (ProLong's mix of long documents at our scale).</item>
/// <item><c>task_documents</c>: a scored task's example (context and its questions with answers) read as a plain
/// document: every token a target, every row distilled.</item>
/// <item><c>passkeys</c>: DuoAttention's multi-passkey haystack (<see cref="MultiPasskey"/>, ten keys); like the
/// official data, only the question-and-answer block after the context is supervised (distilled rows, and for a
/// cross-entropy each of its tokens).</item>
/// <item><c>context_synthesis</c>: the analog of the paper's synthetic questions about long contexts: a scored task's
/// example with its questions, the loss on the answer tokens only; the question-and-answer block is distilled.</item>
/// </list>
/// </summary>
public sealed class MaskData
{
    public static readonly string[] Sources = ["natural_text", "task_documents", "passkeys", "context_synthesis"];

    private readonly (string Name, double Weight)[] _mix;
    private readonly double _total;
    private readonly int _seed, _length;
    private readonly MultiPasskey _passkey;
    private readonly LongContextTask[] _tasks;

    public MaskData(IReadOnlyDictionary<string, double> weights, int seed, int length, int passkeys = 10)
    {
        _mix = Sources.Where(s => weights.TryGetValue(s, out double w) && w > 0).Select(s => (s, weights[s])).ToArray();
        if (_mix.Length == 0) throw new ArgumentException("the data mix has no source with a positive weight");
        _total = _mix.Sum(m => m.Weight);
        _seed = seed;
        _length = length;
        _passkey = new MultiPasskey(passkeys);
        _tasks = TaskSuite.Scored.Where(t => t.MinLength <= length).ToArray();
    }

    /// <summary>Sequence <paramref name="index"/> of step <paramref name="step"/>.</summary>
    public MaskSequence Get(int step, int index)
    {
        int seed = Pretrainer.SeedOf(_seed, step, index);
        var rng = new Random(seed);
        double u = rng.NextDouble() * _total;
        string source = _mix[^1].Name;
        foreach (var (name, w) in _mix) { if (u < w) { source = name; break; } u -= w; }
        int T = _length;
        switch (source)
        {
            case "natural_text":
                return Document(source, NaturalText.Generate(seed, T), T);
            case "task_documents":
            {
                var task = _tasks[rng.Next(_tasks.Length)];
                var ex = task.Generate(seed, T, task.TrainingQuestions);
                return Document(source, ex.TrainingSequence().Tokens, ex.Context.Length);
            }
            case "passkeys":
            {
                var ex = _passkey.Generate(seed, T, _passkey.Keys);
                var tokens = ex.TrainingSequence().Tokens;
                int qa = ex.Context.Length;
                var pos = Enumerable.Range(qa - 1, T - qa).ToArray();
                return new MaskSequence(source, tokens, Enumerable.Range(qa, T - qa).ToArray(), pos, pos.Select(p => tokens[p + 1]).ToArray(), qa);
            }
            default: // context_synthesis
            {
                var task = _tasks[rng.Next(_tasks.Length)];
                var ex = task.Generate(seed, T, task.TrainingQuestions);
                var (tokens, pos, targets) = ex.TrainingSequence();
                int qa = ex.Context.Length;
                return new MaskSequence(source, tokens, Enumerable.Range(qa, T - qa).ToArray(), pos, targets, qa);
            }
        }
    }

    /// <summary>A plain document: every row distilled, every next token a target (the first token has none).</summary>
    private static MaskSequence Document(string source, int[] tokens, int qaStart)
    {
        int T = tokens.Length;
        var pos = Enumerable.Range(0, T - 1).ToArray();
        return new MaskSequence(source, tokens, Enumerable.Range(0, T).ToArray(), pos, pos.Select(p => tokens[p + 1]).ToArray(), qaStart);
    }

    /// <summary>The <paramref name="batch"/> sequences of a step laid back to back (rows and positions index the concatenation).</summary>
    public (int[] Tokens, int[] Rows, int[] Positions, int[] Targets, MaskSequence[] Sequences) Batch(int step, int batch)
    {
        var seqs = Enumerable.Range(0, batch).Select(b => Get(step, b)).ToArray();
        var tokens = seqs.SelectMany(s => s.Tokens).ToArray();
        var rows = seqs.SelectMany((s, b) => s.Rows.Select(r => r + b * _length)).ToArray();
        var pos = seqs.SelectMany((s, b) => s.LossPositions.Select(p => p + b * _length)).ToArray();
        var tgt = seqs.SelectMany(s => s.Targets).ToArray();
        return (tokens, rows, pos, tgt, seqs);
    }
}
