namespace KvNotebooks.Tasks;

/// <summary>
/// Recall, HELMET's JSON KV: a dense object of records <c>{ K h : V , … }</c> with two-token keys
/// (a name and a hex piece) filling the whole context; asked <c>question K h :</c>, answer the value V.
/// </summary>
public sealed class JsonKv : LongContextTask
{
    public override string Name => "json_kv";
    public override string Category => "Recall";
    public override string Description => "dense object of two-token keys → one number; asked a key, answer its value (SubEM)";
    public override int TrainingQuestions => 8;
    /// <summary>Short enough for the first stage of a curriculum (TRAINING-NOTES.md: retrieval forms at 32 tokens, not at 512).</summary>
    public override int MinLength => 32;
    public override int MaxAnswerTokens(int length) => 4;
    public override double ChanceScore(int length) => 1.0 / V.Numbers.Count;

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int colon = V[":"], comma = V[","];
        int ctx = length - QaTokens(4, 1, questions);
        int n = (ctx - 3) / 5;
        if (n < questions) throw new ArgumentOutOfRangeException(nameof(length), length, $"{Name}: too short for {questions} questions");
        var keys = new HashSet<(int, int)>();
        var records = new List<(int K, int H, int Val)>();
        while (records.Count < n)
        {
            var key = (V.Names.Sample(rng), V.Hex.Sample(rng));
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
