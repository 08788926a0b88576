namespace KvNotebooks.Tasks;

/// <summary>
/// Summ, aggregation over the whole context: names are mentioned throughout the filler with different
/// frequencies; answer the three most frequent, most frequent first. Scored by the overlap of the
/// first three names generated with the gold three. No single passage holds the answer.
/// </summary>
public sealed class Frequency : LongContextTask
{
    public const int Top = 3;
    public override string Name => "freq";
    public override string Category => "Summ";
    public override string Description => "names mentioned with different frequencies; answer the 3 most frequent (top-3 overlap)";
    public override int TrainingQuestions => 1;
    public override int MaxAnswerTokens(int length) => Top + 2;
    public override double ChanceScore(int length) => (double)Top / Entities(length);

    private static int Mentions(int length) => Math.Clamp(length / 24, 32, 200);
    private static int Entities(int length) => Math.Clamp(Mentions(length) / 4, 8, 12);

    /// <summary>Mention counts, strictly decreasing over the first Top + 1 entities and at least 1.</summary>
    public static int[] Counts(int mentions, int entities)
    {
        var w = Enumerable.Range(0, entities).Select(i => Math.Pow(entities - i, 1.5)).ToArray();
        double sum = w.Sum();
        var c = w.Select(x => Math.Max(1, (int)Math.Round(mentions * x / sum))).ToArray();
        for (int i = Top; i >= 1; i--) if (c[i - 1] <= c[i]) c[i - 1] = c[i] + 1;
        for (int i = Top + 1; i < entities; i++) c[i] = Math.Min(c[i], c[Top]);
        return c;
    }

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        if (questions != 1) throw new ArgumentOutOfRangeException(nameof(questions), questions, $"{Name} asks one question per context");
        int e = Entities(length);
        var names = V.Names.SampleDistinct(rng, e);
        var counts = Counts(Mentions(length), e);
        var mentions = names.SelectMany((nm, i) => Enumerable.Repeat(nm, counts[i])).OrderBy(_ => rng.Next()).Select(t => (int[])[t]).ToList();
        int[] question = [V["question"], V["most"], V["frequent"], V[":"]];
        int ctx = length - QaTokens(question.Length, Top, 1);
        var (tokens, _) = Haystack.Build(rng, ctx, mentions);
        return Make(seed, length, tokens, [new QuestionAnswer(question, names[..Top])]);
    }

    public override double Score(QuestionAnswer qa, ReadOnlySpan<int> generated) => Scoring.TopKOverlap(qa.Answer, generated);
}
