namespace KvNotebooks.Tasks;

/// <summary>
/// Recall, RULER's multi-key needle in a haystack: needles <c>the special number for K is V .</c> with
/// distinct keys scattered in filler; asked one key, answer its number.
/// </summary>
public sealed class NeedleMultiKey : LongContextTask
{
    public override string Name => "niah_mk";
    public override string Category => "Recall";
    public override string Description => "needles 'the special number for K is V' in filler; asked K, answer V (SubEM)";
    /// <summary>Short enough for the first stage of a curriculum (TRAINING-NOTES.md: retrieval forms at 32 tokens, not at 512).</summary>
    public override int MinLength => 32;
    public override int MaxAnswerTokens(int length) => 4;
    public override double ChanceScore(int length) => 1.0 / V.Numbers.Count;
    public static int Needles(int length) => Haystack.Count(length, 96, 2, 64);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int n = Math.Max(Needles(length), questions);
        var keys = V.Names.SampleDistinct(rng, n);
        var values = keys.Select(_ => V.Numbers.Sample(rng)).ToArray();
        var prefix = V.Ids("the special number for");
        var needles = keys.Select((k, i) => (int[])[.. prefix, k, V["is"], values[i], V["."]]).ToList();
        int ctx = length - QaTokens(1 + prefix.Length + 2, 1, questions);
        var (tokens, _) = Haystack.Build(rng, ctx, needles);
        var asked = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(questions);
        return Make(seed, length, tokens,
            asked.Select(i => new QuestionAnswer([V["question"], .. prefix, keys[i], V["is"]], [values[i]])));
    }
}
