namespace KvNotebooks.Tasks;

/// <summary>
/// RAG, HELMET's multi-document QA: passages <c>doc T : … T lives in C . … T works as J . …</c>, one
/// per entity, every passage with the same kinds of facts (so all but one are distractors); asked
/// <c>question T lives in</c> (or <c>works as</c>), answer the city (or job) from T's passage.
/// </summary>
public sealed class Rag : LongContextTask
{
    public override string Name => "rag";
    public override string Category => "RAG";
    public override string Description => "passages about entities with 'T lives in C' / 'T works as J' facts; answer from T's passage (SubEM)";
    public override int TrainingQuestions => 6;
    public override int MaxAnswerTokens(int length) => 4;
    public override double ChanceScore(int length) => 1.0 / V.CityIds.Count;

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int n = Math.Max(Haystack.Count(length, 64, 2, 64), (questions + 1) / 2);
        int ctx = length - QaTokens(4, 1, questions);
        var entities = V.Names.SampleDistinct(rng, n);
        var city = entities.Select(_ => V.CityIds.Sample(rng)).ToArray();
        var job = entities.Select(_ => V.JobIds.Sample(rng)).ToArray();
        // Fixed tokens per passage: "doc T :" (3) + two facts of 5; the rest of the context is filler,
        // split at random among the passages' three gaps.
        int filler = ctx - 1 - n * 13;
        if (filler < 0) throw new ArgumentOutOfRangeException(nameof(length), length, $"{Name}: too short for {n} passages");
        var cuts = Enumerable.Range(0, 3 * n - 1).Select(_ => rng.Next(filler + 1)).Append(0).Append(filler).OrderBy(x => x).ToArray();
        var tokens = new List<int>(ctx) { V.BosId };
        for (int i = 0; i < n; i++)
        {
            int[] lives = [entities[i], V["lives"], V["in"], city[i], V["."]];
            int[] works = [entities[i], V["works"], V["as"], job[i], V["."]];
            bool livesFirst = rng.Next(2) == 0;
            tokens.AddRange([V["doc"], entities[i], V[":"]]);
            FillerText.Append(rng, cuts[3 * i + 1] - cuts[3 * i], tokens);
            tokens.AddRange(livesFirst ? lives : works);
            FillerText.Append(rng, cuts[3 * i + 2] - cuts[3 * i + 1], tokens);
            tokens.AddRange(livesFirst ? works : lives);
            FillerText.Append(rng, cuts[3 * i + 3] - cuts[3 * i + 2], tokens);
        }
        // Questions: distinct (entity, fact) pairs.
        var pairs = Enumerable.Range(0, 2 * n).OrderBy(_ => rng.Next()).Take(questions);
        return Make(seed, length, tokens.ToArray(), pairs.Select(p =>
        {
            int i = p / 2;
            return p % 2 == 0
                ? new QuestionAnswer([V["question"], entities[i], V["lives"], V["in"]], [city[i]])
                : new QuestionAnswer([V["question"], entities[i], V["works"], V["as"]], [job[i]]);
        }));
    }
}
