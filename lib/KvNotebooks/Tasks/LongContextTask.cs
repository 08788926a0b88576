namespace KvNotebooks.Tasks;

/// <summary>
/// A synthetic long-context task: a deterministic generator (seed, length) → context + questions +
/// gold answers, and a scorer of generated answers in [0, 1]. Each task is the analog of one HELMET
/// dataset; <see cref="Category"/> names its HELMET category (docs/statistics.md, "What is scored").
/// </summary>
public abstract class LongContextTask
{
    protected static Vocabulary V => Vocabulary.Default;

    /// <summary>Short name used in CSV rows and on the command line.</summary>
    public abstract string Name { get; }
    /// <summary>HELMET category: Recall, RAG, Re-rank, ICL, LongQA, Summ, LongGen.</summary>
    public abstract string Category { get; }
    /// <summary>One line: what the task asks and how it is scored.</summary>
    public abstract string Description { get; }
    /// <summary>The shortest length the generator supports.</summary>
    public virtual int MinLength => 128;
    /// <summary>Questions per context when training (evaluation always asks one).</summary>
    public virtual int TrainingQuestions => 4;

    /// <summary>How many tokens a generated answer may have at this length (the decode budget).</summary>
    public abstract int MaxAnswerTokens(int length);

    /// <summary>A fresh example: the training sequence (context + all questions and answers) has exactly
    /// <paramref name="length"/> tokens. Same (seed, length, questions) → same example.</summary>
    public TaskExample Generate(int seed, int length, int questions = 1)
    {
        if (length < MinLength) throw new ArgumentOutOfRangeException(nameof(length), length, $"task {Name} needs at least {MinLength} tokens");
        if (questions < 1) throw new ArgumentOutOfRangeException(nameof(questions), questions, "at least one question");
        TaskExample ex;
        try { ex = Build(new Random(seed), seed, length, questions); }
        catch (ArgumentException e) { throw new ArgumentException($"task {Name}: {questions} question(s) do not fit in {length} tokens ({e.Message})", nameof(length), e); }
        if (ex.TrainingLength != length)
            throw new InvalidOperationException($"task {Name} built {ex.TrainingLength} tokens for length {length} (a generator bug)");
        return ex;
    }

    protected abstract TaskExample Build(Random rng, int seed, int length, int questions);

    /// <summary>Score of a generated answer (the tokens before &lt;eos&gt;) in [0, 1].
    /// Default: substring exact match (the gold answer appears in the generation).</summary>
    public virtual double Score(QuestionAnswer qa, ReadOnlySpan<int> generated) => Scoring.SubstringExactMatch(qa.Answer, generated);

    /// <summary>Expected score of an answer that ignores the context (uniform guessing), for the "chance" line.</summary>
    public abstract double ChanceScore(int length);

    /// <summary>Builds the example from a context and its questions, checking the layout.</summary>
    protected TaskExample Make(int seed, int length, int[] context, IEnumerable<QuestionAnswer> qas) =>
        new(Name, length, seed, context, qas.ToArray());

    /// <summary>Tokens the questions take in the training sequence: question + answer + &lt;eos&gt; each.</summary>
    protected static int QaTokens(int questionTokens, int answerTokens, int questions) => questions * (questionTokens + answerTokens + 1);
}
