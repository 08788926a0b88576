namespace KvNotebooks.Tasks;

/// <summary>
/// Recall, HELMET's JSON KV: a dense object of records <c>{ K h : V , … }</c> with two-token keys
/// (a name and a hex piece) filling the whole context; asked <c>question K h :</c>, answer the value V.
/// </summary>
/// <remarks>
/// At n records a name recurs about n / 128 times, so in short contexts the name alone finds the record,
/// and a model trained there learns to match the name only: at 4K tokens (~800 records, each name ~6
/// times) that gives about one answer in six. <see cref="Hard"/> is the training variant that closes the
/// shortcut: its keys are drawn from ⌈√n⌉ names × ⌈√n⌉ hex pieces, so at every length each piece recurs
/// about √n times and only the pair identifies a record. <see cref="HexDecides"/> teaches the other half
/// of the key on its own: its records share one name (up to 96 records, about 500 tokens), so only the hex
/// piece tells them apart. Neither is scored (category "Pretrain").
/// </remarks>
public sealed class JsonKv : LongContextTask
{
    private enum Keys { Any, Pairs, HexDecides }

    private readonly Keys _keys;

    public JsonKv() : this(Keys.Any) { }

    private JsonKv(Keys keys) => _keys = keys;

    /// <summary>The training variant whose key pieces all recur (see the remarks).</summary>
    public static JsonKv Hard { get; } = new(Keys.Pairs);

    /// <summary>The training variant whose records share as few names as the hex pieces allow
    /// (⌈n / 96⌉), so the hex piece alone finds the record: the other half of the key.</summary>
    public static JsonKv HexDecides { get; } = new(Keys.HexDecides);

    public override string Name => _keys switch { Keys.Pairs => "json_kv_hard", Keys.HexDecides => "json_kv_hex", _ => "json_kv" };
    public override string Category => _keys == Keys.Any ? "Recall" : "Pretrain";
    public override string Description => _keys switch
    {
        Keys.Pairs => "json_kv with keys from √n names × √n hex pieces: every piece recurs, only the pair finds the record (training)",
        Keys.HexDecides => "json_kv whose records share a few names, so the hex piece finds the record (training)",
        _ => "dense object of two-token keys → one number; asked a key, answer its value (SubEM)",
    };
    public override int TrainingQuestions => 8;
    /// <summary>Short enough for the first stage of a curriculum (TRAINING-NOTES.md: retrieval forms at 32 tokens, not at 512).</summary>
    public override int MinLength => 32;
    public override int MaxAnswerTokens(int length) => 4;
    public override double ChanceScore(int length) => 1.0 / V.Numbers.Count;

    /// <summary>Names and hex pieces the hard variant draws keys from for <paramref name="records"/> records:
    /// ⌈√n⌉ of each (at least 2), capped by the class sizes.</summary>
    public static (int Names, int Hex) HardPools(int records)
    {
        int p = Math.Max(2, (int)Math.Ceiling(Math.Sqrt(records)));
        return (Math.Min(p, V.Names.Count), Math.Min(p, V.Hex.Count));
    }

    /// <summary>Names and hex pieces the hex-decides variant draws keys from for <paramref name="records"/>
    /// records: every hex piece, and as few names as still give that many distinct keys.</summary>
    private static (int Names, int Hex) HexDecidesPools(int records) =>
        (Math.Min(V.Names.Count, (records + V.Hex.Count - 1) / V.Hex.Count), V.Hex.Count);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int colon = V[":"], comma = V[","];
        int ctx = length - QaTokens(4, 1, questions);
        int n = (ctx - 3) / 5;
        if (n < questions) throw new ArgumentOutOfRangeException(nameof(length), length, $"{Name}: too short for {questions} questions");
        Func<int> name = () => V.Names.Sample(rng), hex = () => V.Hex.Sample(rng);
        if (_keys != Keys.Any)
        {
            var (pn, ph) = _keys == Keys.Pairs ? HardPools(n) : HexDecidesPools(n);
            var names = V.Names.SampleDistinct(rng, pn);
            var pieces = V.Hex.SampleDistinct(rng, ph);
            name = () => names[rng.Next(pn)];
            hex = () => pieces[rng.Next(ph)];
        }
        var keys = new HashSet<(int, int)>();
        var records = new List<(int K, int H, int Val)>();
        while (records.Count < n)
        {
            var key = (name(), hex());
            if (keys.Add(key)) records.Add((key.Item1, key.Item2, V.Numbers.Sample(rng)));
        }
        var tokens = new List<int>(ctx) { V.BosId };
        FillerText.Append(rng, ctx - 3 - 5 * n, tokens); // a short preamble takes the remainder
        tokens.Add(V["{"]);
        foreach (var r in records) tokens.AddRange([r.K, r.H, colon, r.Val, comma]);
        tokens.Add(V["}"]);
        var asked = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(questions);
        return Make(seed, length, tokens.ToArray(),
            asked.Select(i => new QuestionAnswer([V["question"], records[i].K, records[i].H, colon], [records[i].Val])));
    }
}
