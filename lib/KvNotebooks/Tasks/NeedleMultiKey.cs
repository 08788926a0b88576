namespace KvNotebooks.Tasks;

/// <summary>
/// Recall, RULER's multi-key needle in a haystack: needles <c>the special number for K is V .</c> with
/// distinct keys scattered in filler; asked one key, answer its number.
/// </summary>
/// <remarks>
/// The keys are names. <see cref="HexKeys"/> is a training variant whose keys are hex pieces: a model that
/// only ever looked things up by name learns to match names and nothing else (our model at 64 tokens
/// answered name-keyed needles at 91 % and hex-keyed ones at chance), while json_kv's keys are a name
/// *and* a hex piece. Not scored (category "Pretrain").
/// </remarks>
public sealed class NeedleMultiKey : LongContextTask
{
    private readonly bool _hexKeys;

    public NeedleMultiKey() : this(hexKeys: false) { }

    private NeedleMultiKey(bool hexKeys) => _hexKeys = hexKeys;

    /// <summary>The training variant with hex-piece keys (see the remarks).</summary>
    public static NeedleMultiKey HexKeys { get; } = new(hexKeys: true);

    public override string Name => _hexKeys ? "niah_hex" : "niah_mk";
    public override string Category => _hexKeys ? "Pretrain" : "Recall";
    public override string Description => _hexKeys
        ? "niah_mk with hex-piece keys: teaches lookups by a hex piece, half of every json_kv key (training)"
        : "needles 'the special number for K is V' in filler; asked K, answer V (SubEM)";
    /// <summary>Short enough for the first stage of a curriculum (TRAINING-NOTES.md: retrieval forms at 32 tokens, not at 512).</summary>
    public override int MinLength => 32;
    public override int MaxAnswerTokens(int length) => 4;
    public override double ChanceScore(int length) => 1.0 / V.Numbers.Count;
    public static int Needles(int length) => Haystack.Count(length, 96, 2, 64);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int n = Math.Max(Needles(length), questions);
        var keys = (_hexKeys ? V.Hex : V.Names).SampleDistinct(rng, n);
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
