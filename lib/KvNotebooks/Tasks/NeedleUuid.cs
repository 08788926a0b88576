namespace KvNotebooks.Tasks;

/// <summary>
/// Recall, RULER's multi-key UUID needles: <c>the special uuid for K is u u u u .</c> (four hex pieces);
/// asked one key, answer its whole uuid.
/// </summary>
/// <remarks>
/// At 4K tokens the 32 uuids hold 128 pieces drawn from 96, so "copy what followed the piece just written"
/// (an induction head's lookup) is often ambiguous; our model learned exactly that and lost later pieces
/// at 4K. <see cref="SharedPieces"/> is the training variant whose uuids all draw from a pool of
/// <see cref="SharedPool"/> pieces, four distinct each: the piece just written then rarely tells
/// which comes next, and only the asked key's needle does (not scored, category "Pretrain").
/// </remarks>
public sealed class NeedleUuid : LongContextTask
{
    public const int Pieces = 4;

    /// <summary>How many pieces all uuids of a <see cref="SharedPieces"/> context draw from.</summary>
    public const int SharedPool = 8;

    private readonly bool _shared;

    public NeedleUuid() : this(shared: false) { }

    private NeedleUuid(bool shared) => _shared = shared;

    /// <summary>The training variant whose uuids share a pool of <see cref="SharedPool"/> pieces (see the remarks).</summary>
    public static NeedleUuid SharedPieces { get; } = new(shared: true);

    public override string Name => _shared ? "niah_uuid_pool" : "niah_uuid";
    public override string Category => _shared ? "Pretrain" : "Recall";
    public override string Description => _shared
        ? $"niah_uuid whose uuids share {SharedPool} pieces, so only the key's needle tells which piece comes next (training)"
        : "needles 'the special uuid for K is u u u u'; asked K, answer the 4-piece uuid (SubEM)";
    public override int MaxAnswerTokens(int length) => Pieces + 4;
    public override double ChanceScore(int length) => Math.Pow(1.0 / V.Hex.Count, Pieces);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int n = Math.Max(Haystack.Count(length, 128, 2, 32), questions);
        var keys = V.Names.SampleDistinct(rng, n);
        int[]? pool = _shared ? V.Hex.SampleDistinct(rng, SharedPool) : null;
        var uuids = keys.Select(_ => pool is null
            ? Enumerable.Range(0, Pieces).Select(_ => V.Hex.Sample(rng)).ToArray()
            : pool.OrderBy(_ => rng.Next()).Take(Pieces).ToArray()).ToArray();
        var prefix = V.Ids("the special uuid for");
        int ctx = length - QaTokens(1 + prefix.Length + 2, Pieces, questions);
        var (tokens, _) = Haystack.Build(rng, ctx, keys.Select((k, i) => (int[])[.. prefix, k, V["is"], .. uuids[i], V["."]]).ToList());
        var asked = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(questions);
        return Make(seed, length, tokens,
            asked.Select(i => new QuestionAnswer([V["question"], .. prefix, keys[i], V["is"]], uuids[i])));
    }
}
