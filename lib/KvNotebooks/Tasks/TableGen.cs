namespace KvNotebooks.Tasks;

/// <summary>
/// LongGen, LongProc's HTML→TSV: records <c>&lt; row N : E C J &gt;</c> scattered through the context in
/// random order; answer the whole table, one line per row in row order, <c>N : E C J &lt;nl&gt;</c> —
/// hundreds of output tokens at 4K. Scored by row-level F1.
/// </summary>
public sealed class TableGen : LongContextTask
{
    public override string Name => "table";
    public override string Category => "LongGen";
    public override string Description => "records '< row N : E C J >' scattered in filler; write them all as a table in row order (row F1)";
    public override int TrainingQuestions => 1;
    public override int MaxAnswerTokens(int length) => 6 * Rows(length) + 6;
    public override double ChanceScore(int length) => 0;
    public static int Rows(int length) => Haystack.Count(length, 96, 2, 48);

    public override double Score(QuestionAnswer qa, ReadOnlySpan<int> generated) => Scoring.RowF1(qa.Answer, generated, V[Vocabulary.Newline]);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        if (questions != 1) throw new ArgumentOutOfRangeException(nameof(questions), questions, $"{Name} asks one question per context");
        int r = Rows(length), colon = V[":"], nl = V[Vocabulary.Newline];
        var names = V.Names.SampleDistinct(rng, r);
        var rows = Enumerable.Range(0, r).Select(i => (int[])[V.Numbers[i + 1], colon, names[i], V.CityIds.Sample(rng), V.JobIds.Sample(rng)]).ToArray();
        var items = rows.OrderBy(_ => rng.Next()).Select(row => (int[])[V["<"], V["row"], .. row, V[">"]]).ToList();
        int[] question = [V["question"], V["table"], V[":"]];
        var answer = rows.SelectMany(row => row.Append(nl)).ToArray();
        int ctx = length - QaTokens(question.Length, answer.Length, 1);
        var (tokens, _) = Haystack.Build(rng, ctx, items);
        return Make(seed, length, tokens, [new QuestionAnswer(question, answer)]);
    }
}
