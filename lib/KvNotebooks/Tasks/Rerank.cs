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
/// <para><see cref="OneWord"/> is the training variant that isolates the step ranking cannot do without:
/// a passage's id carried to its words. Its query is one word, held by one to three passages and by no
/// other; the answer is those passages' ids in random order. Several questions share a context, each
/// with its own word. <see cref="OneWordShort"/> and <see cref="OneWordMedium"/> ask the same of passages
/// of about 4 and 10 words (rerank's are about 20), so a passage's id is a few tokens from its words: the
/// binding formed there first, and then carried to longer passages (docs/experiments/training-log.md).</para>
/// </remarks>
public sealed class Rerank : LongContextTask
{
    private enum Variant { Scored, AnyOrder, OneWord }

    private readonly Variant _variant;
    private readonly int _passageWords; // OneWord's passage length in words; 0: rerank's layout

    public Rerank() : this(Variant.Scored) { }

    private Rerank(Variant variant, int passageWords = 0) => (_variant, _passageWords) = (variant, passageWords);

    /// <summary>The training variant whose ties fall in random order (see the remarks).</summary>
    public static Rerank AnyOrder { get; } = new(Variant.AnyOrder);

    /// <summary>The training variant asked for the passages that hold one word (see the remarks).</summary>
    public static Rerank OneWord { get; } = new(Variant.OneWord);

    /// <summary><see cref="OneWord"/> with passages of about 4 words (see the remarks).</summary>
    public static Rerank OneWordShort { get; } = new(Variant.OneWord, passageWords: 4);

    /// <summary><see cref="OneWord"/> with passages of about 10 words (see the remarks).</summary>
    public static Rerank OneWordMedium { get; } = new(Variant.OneWord, passageWords: 10);

    /// <summary>How many passages at most hold a <see cref="OneWord"/> query's word.</summary>
    public const int MaxHolders = 3;

    public override string Name => _variant switch { Variant.AnyOrder => "rerank_any", Variant.OneWord => _passageWords == 0 ? "rerank_word" : $"rerank_word_{_passageWords}", _ => "rerank" };
    public override string Category => _variant == Variant.Scored ? "Re-rank" : "Pretrain";
    public override string Description => _variant switch
    {
        Variant.AnyOrder => "rerank whose equally relevant passages come in random order (training)",
        Variant.OneWord => "rerank asked one word: the ids of the 1-3 passages that hold it, in any order (training)"
            + (_passageWords == 0 ? "" : $"; passages of about {_passageWords} words"),
        _ => "passages with ids; rank the 10 sharing most words with a 3-word query (NDCG@10)",
    };
    public override int TrainingQuestions => _variant == Variant.OneWord ? 4 : 1;
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
        if (_variant == Variant.OneWord) return BuildOneWord(rng, seed, length, questions);
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
            AppendPassage(rng, tokens, ids[i], EvenShare(words, n, i), avoid, query[..grades[i]]);
        }
        // Ties by context order; the variant draws its tie order after the context, from the same stream.
        var tieOrder = Enumerable.Range(0, n).ToArray();
        if (_variant == Variant.AnyOrder) rng.Shuffle(tieOrder);
        var ranked = Enumerable.Range(0, n).Where(i => grades[i] > 0).OrderByDescending(i => grades[i]).ThenBy(i => tieOrder[i])
            .Take(relevant).Select(i => ids[i]).ToArray();
        return Make(seed, length, tokens.ToArray(),
            [new QuestionAnswer(question, ranked, ids, grades)]);
    }

    private TaskExample BuildOneWord(Random rng, int seed, int length, int questions)
    {
        // rerank's layout (a passage per 24 tokens), or as many passages of about _passageWords words as fit
        // beside the questions (each at most 8 tokens).
        int n = _passageWords == 0 ? Haystack.Count(length, 24, 4, V.Numbers.Count)
            : Math.Clamp((length - 8 * questions) / (4 + _passageWords), 4, V.Numbers.Count);
        var ids = V.Numbers.SampleDistinct(rng, n);
        var words = V.Filler.SampleDistinct(rng, questions);
        var holders = words.Select(_ => Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(1 + rng.Next(MaxHolders)).ToArray()).ToArray();
        int ctx = length - holders.Sum(h => 4 + h.Length + 1);
        int fill = ctx - 1 - 4 * n;
        var held = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, questions).Where(q => holders[q].Contains(i)).Select(q => words[q]).ToArray()).ToArray();
        // An even split of the filler, except that a passage holding more of the asked words than its share
        // has room for takes words from passages with words to spare. Only such draws change: every example
        // the even split could hold stays what it was (runs resume and reproduce bit for bit).
        var need = held.Select(h => Math.Max(3, h.Length)).ToArray();
        if (need.Sum() > fill)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"{Name}: too short for {n} passages and {questions} words");
        var sizes = Enumerable.Range(0, n).Select(i => EvenShare(fill, n, i)).ToArray();
        for (int i = 0, donor = 0; i < n; i++) // donors only lose words, so the next one is never behind
            while (sizes[i] < need[i])
            {
                while (sizes[donor] <= need[donor]) donor++;
                sizes[donor]--; sizes[i]++;
            }
        var avoid = words.ToHashSet();
        var tokens = new List<int>(ctx) { V.BosId };
        for (int i = 0; i < n; i++) AppendPassage(rng, tokens, ids[i], sizes[i], avoid, held[i]);
        var qas = new QuestionAnswer[questions];
        for (int q = 0; q < questions; q++)
        {
            var grades = Enumerable.Range(0, n).Select(i => holders[q].Contains(i) ? 1 : 0).ToArray();
            qas[q] = new QuestionAnswer([V["query"], words[q], V["ranking"], V[":"]], holders[q].Select(i => ids[i]).ToArray(), ids, grades);
        }
        return Make(seed, length, tokens.ToArray(), qas);
    }

    /// <summary>Passage <paramref name="i"/>'s share of <paramref name="total"/> words split over <paramref name="parts"/>
    /// passages, the first <c>total % parts</c> one word longer.</summary>
    private static int EvenShare(int total, int parts, int i) => total / parts + (i < total % parts ? 1 : 0);

    /// <summary>Appends <c>[ id ] w w … ;</c>: <paramref name="words"/> filler words that avoid
    /// <paramref name="avoid"/>, with each of <paramref name="placed"/> at a random slot of its own.</summary>
    private static void AppendPassage(Random rng, List<int> tokens, int id, int words, IReadOnlySet<int> avoid, int[] placed)
    {
        var body = new List<int>(words);
        FillerText.AppendAvoiding(rng, words, body, avoid);
        var slots = Enumerable.Range(0, words).OrderBy(_ => rng.Next()).Take(placed.Length).ToArray();
        for (int s = 0; s < slots.Length; s++) body[slots[s]] = placed[s];
        tokens.AddRange([V["["], id, V["]"]]);
        tokens.AddRange(body);
        tokens.Add(V[";"]);
    }
}
