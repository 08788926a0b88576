namespace KvNotebooks.Tasks;

/// <summary>One question about a context and its gold answer. <see cref="Grades"/> gives graded
/// relevance per id for ranking tasks (parallel to <see cref="GradedIds"/>).</summary>
public sealed record QuestionAnswer(int[] Question, int[] Answer, int[]? GradedIds = null, int[]? Grades = null);

/// <summary>
/// A generated long-context example: a context, then one or more questions. Evaluation asks the first
/// question: the prompt is &lt;bos&gt; context question, and the model generates until &lt;eos&gt;.
/// Training appends every question, its answer and &lt;eos&gt;; the loss is on the answers.
/// </summary>
public sealed record TaskExample(string Task, int Length, int Seed, int[] Context, QuestionAnswer[] Questions)
{
    /// <summary>Context positions p whose next token Context[p + 1] is also a training target (the copy
    /// task's repeated spans); empty for question-answer tasks.</summary>
    public int[] ContextLossPositions { get; init; } = [];

    /// <summary>&lt;bos&gt; context question[q]: what a model is given at evaluation.</summary>
    public int[] Prompt(int q = 0) => [.. Context, .. Questions[q].Question];

    /// <summary>Context, then every question + answer + &lt;eos&gt;, with the positions whose next token
    /// is an answer token (or the closing &lt;eos&gt;) and those targets.</summary>
    public (int[] Tokens, int[] LossPositions, int[] Targets) TrainingSequence()
    {
        var tokens = new List<int>(Context);
        var pos = new List<int>(ContextLossPositions);
        var tgt = new List<int>(ContextLossPositions.Select(p => Context[p + 1]));
        foreach (var qa in Questions)
        {
            tokens.AddRange(qa.Question);
            foreach (int a in qa.Answer.Append(Vocabulary.Default.EosId))
            {
                pos.Add(tokens.Count - 1);
                tgt.Add(a);
                tokens.Add(a);
            }
        }
        return (tokens.ToArray(), pos.ToArray(), tgt.ToArray());
    }

    /// <summary>Tokens of <see cref="TrainingSequence"/> without building it.</summary>
    public int TrainingLength => Context.Length + Questions.Sum(q => q.Question.Length + q.Answer.Length + 1);
}
