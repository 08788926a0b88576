namespace KvNotebooks.Tasks;

/// <summary>
/// Recall, RULER's multi-key UUID needles: <c>the special uuid for K is u u u u .</c> (four hex pieces);
/// asked one key, answer its whole uuid.
/// </summary>
public sealed class NeedleUuid : LongContextTask
{
    public const int Pieces = 4;
    public override string Name => "niah_uuid";
    public override string Category => "Recall";
    public override string Description => "needles 'the special uuid for K is u u u u'; asked K, answer the 4-piece uuid (SubEM)";
    public override int MaxAnswerTokens(int length) => Pieces + 4;
    public override double ChanceScore(int length) => Math.Pow(1.0 / V.Hex.Count, Pieces);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int n = Math.Max(Haystack.Count(length, 128, 2, 32), questions);
        var keys = V.Names.SampleDistinct(rng, n);
        var uuids = keys.Select(_ => Enumerable.Range(0, Pieces).Select(_ => V.Hex.Sample(rng)).ToArray()).ToArray();
        var prefix = V.Ids("the special uuid for");
        int ctx = length - QaTokens(1 + prefix.Length + 2, Pieces, questions);
        var (tokens, _) = Haystack.Build(rng, ctx, keys.Select((k, i) => (int[])[.. prefix, k, V["is"], .. uuids[i], V["."]]).ToList());
        var asked = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(questions);
        return Make(seed, length, tokens,
            asked.Select(i => new QuestionAnswer([V["question"], .. prefix, keys[i], V["is"]], uuids[i])));
    }
}
