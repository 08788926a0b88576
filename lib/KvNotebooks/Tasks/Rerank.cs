namespace KvNotebooks.Tasks;

/// <summary>
/// Re-rank, HELMET's MS MARCO: passages <c>[ id ] w w … ;</c>; a query of three words; a passage's
/// relevance is how many query words it contains (0–3). Answer the ids of the ten most relevant
/// passages, most relevant first; scored by NDCG@10.
/// </summary>
/// <remarks>
/// The gold ranking breaks ties by context order, which NDCG@10 ignores. <see cref="AnyOrder"/> is the
/// training variant that breaks them at random, so the loss asks for the grades and not for an order the
/// score never checks (not scored, category "Pretrain").
/// </remarks>
public sealed class Rerank : LongContextTask
{
    private readonly bool _anyOrder;

    public Rerank() : this(anyOrder: false) { }

    private Rerank(bool anyOrder) => _anyOrder = anyOrder;

    /// <summary>The training variant whose ties fall in random order (see the remarks).</summary>
    public static Rerank AnyOrder { get; } = new(anyOrder: true);

    public override string Name => _anyOrder ? "rerank_any" : "rerank";
    public override string Category => _anyOrder ? "Pretrain" : "Re-rank";
    public override string Description => _anyOrder
        ? "rerank whose equally relevant passages come in random order (training)"
        : "passages with ids; rank the 10 sharing most words with a 3-word query (NDCG@10)";
    public override int TrainingQuestions => 1;
    public override int MaxAnswerTokens(int length) => 12;

    public override double Score(QuestionAnswer qa, ReadOnlySpan<int> generated) =>
        Scoring.Ndcg(generated, qa.GradedIds!.Zip(qa.Grades!).ToDictionary(x => x.First, x => x.Second));

    /// <summary>NDCG@10 of ten ids drawn at random, averaged over generated examples.</summary>
    public override double ChanceScore(int length)
    {
        double sum = 0;
        const int trials = 200;
        var rng = new Random(1);
        for (int t = 0; t < trials; t++)
        {
            var ex = Generate(1000 + t % 20, length);
            var qa = ex.Questions[0];
            var ids = ex.Context.Where(V.Numbers.Contains).Distinct().OrderBy(_ => rng.Next()).Take(10).ToArray();
            sum += Score(qa, ids);
        }
        return sum / trials;
    }

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        if (questions != 1) throw new ArgumentOutOfRangeException(nameof(questions), questions, $"{Name} asks one question per context");
        int n = Haystack.Count(length, 24, 4, V.Numbers.Count);
        var ids = V.Numbers.SampleDistinct(rng, n);
        var query = V.Filler.SampleDistinct(rng, 3);
        var grades = new int[n];
        for (int i = 0; i < n; i++)
        {
            double u = rng.NextDouble();
            grades[i] = u < 0.08 ? 3 : u < 0.2 ? 2 : u < 0.4 ? 1 : 0;
        }
        for (int g = 3; g >= 2; g--) // at least one passage of grade 3 and one of grade 2
            if (!grades.Contains(g)) grades[Array.FindIndex(grades, x => x < g)] = g;
        int relevant = Math.Min(10, grades.Count(g => g > 0));
        int[] question = [V["query"], .. query, V["ranking"], V[":"]];
        int ctx = length - QaTokens(question.Length, relevant, 1);
        int words = ctx - 1 - 4 * n;
        if (words < 3 * n) throw new ArgumentOutOfRangeException(nameof(length), length, $"{Name}: too short for {n} passages");
        var avoid = query.ToHashSet();
        var tokens = new List<int>(ctx) { V.BosId };
        for (int i = 0; i < n; i++)
        {
            int w = words / n + (i < words % n ? 1 : 0);
            var body = new List<int>(w);
            FillerText.AppendAvoiding(rng, w, body, avoid);
            var slots = Enumerable.Range(0, w).OrderBy(_ => rng.Next()).Take(grades[i]).ToArray();
            for (int s = 0; s < slots.Length; s++) body[slots[s]] = query[s];
            tokens.AddRange([V["["], ids[i], V["]"]]);
            tokens.AddRange(body);
            tokens.Add(V[";"]);
        }
        // Ties by context order; the variant draws its tie order after the context, from the same stream.
        var tieOrder = Enumerable.Range(0, n).ToArray();
        if (_anyOrder) rng.Shuffle(tieOrder);
        var ranked = Enumerable.Range(0, n).Where(i => grades[i] > 0).OrderByDescending(i => grades[i]).ThenBy(i => tieOrder[i])
            .Take(relevant).Select(i => ids[i]).ToArray();
        return Make(seed, length, tokens.ToArray(),
            [new QuestionAnswer(question, ranked, ids, grades)]);
    }
}
