namespace KvNotebooks.Tasks;

/// <summary>
/// Recall, RULER's multi-value needles: the asked key has three needles with different numbers
/// (other keys one each); answer all three, scored by the fraction found (RULER's recall).
/// </summary>
/// <remarks>
/// The gold answer lists the values in context order, but the score ignores order. Trained on that order,
/// our model learned to give the first value and then guessed: ordering three needles of one key is harder
/// than finding them. <see cref="AnyOrder"/> is the training variant whose answer lists the values in a
/// random order, so the loss asks only for the three values, each once (not scored, category "Pretrain").
/// </remarks>
public sealed class NeedleMultiValue : LongContextTask
{
    public const int ValuesPerKey = 3;
    private readonly bool _anyOrder;

    public NeedleMultiValue() : this(anyOrder: false) { }

    private NeedleMultiValue(bool anyOrder) => _anyOrder = anyOrder;

    /// <summary>The training variant whose answers list the values in random order (see the remarks).</summary>
    public static NeedleMultiValue AnyOrder { get; } = new(anyOrder: true);

    public override string Name => _anyOrder ? "niah_mv_any" : "niah_mv";
    public override string Category => _anyOrder ? "Pretrain" : "Recall";
    public override string Description => _anyOrder
        ? "niah_mv whose answer lists the three values in random order: the loss asks for the values, not their order (training)"
        : "a key with three needles 'the special number for K is V'; answer all three (recall of values)";
    public override int TrainingQuestions => 2;
    public override int MaxAnswerTokens(int length) => 6;
    public override double ChanceScore(int length) => ValuesPerKey / (double)V.Numbers.Count;

    public override double Score(QuestionAnswer qa, ReadOnlySpan<int> generated) => Scoring.Recall(qa.Answer, generated);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int distractors = Math.Max(0, NeedleMultiKey.Needles(length) - ValuesPerKey * questions);
        var keys = V.Names.SampleDistinct(rng, questions + distractors);
        var prefix = V.Ids("the special number for");
        var needles = new List<(int Key, int Value)>();
        for (int q = 0; q < questions; q++)
            foreach (int v in V.Numbers.SampleDistinct(rng, ValuesPerKey)) needles.Add((keys[q], v));
        for (int d = 0; d < distractors; d++) needles.Add((keys[questions + d], V.Numbers.Sample(rng)));
        needles = needles.OrderBy(_ => rng.Next()).ToList();
        int ctx = length - QaTokens(1 + prefix.Length + 2, ValuesPerKey, questions);
        var (tokens, _) = Haystack.Build(rng, ctx, needles.Select(x => (int[])[.. prefix, x.Key, V["is"], x.Value, V["."]]).ToList());
        // Values in context order (the variant shuffles them after the context is drawn, so both tasks
        // build the same contexts from the same seed).
        var answers = Enumerable.Range(0, questions).Select(q => needles.Where(x => x.Key == keys[q]).Select(x => x.Value).ToArray()).ToArray();
        if (_anyOrder)
            foreach (var a in answers) rng.Shuffle(a);
        return Make(seed, length, tokens, answers.Select((a, q) => new QuestionAnswer(
            [V["question"], .. V.Ids("the special numbers for"), keys[q], V["are"]], a)));
    }
}
