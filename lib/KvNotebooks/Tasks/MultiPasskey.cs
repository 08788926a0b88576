namespace KvNotebooks.Tasks;

/// <summary>
/// DuoAttention's training data at our scale (its <c>MultiplePasskeyRetrievalDataset</c>, ten pass keys): numbered pass
/// keys of four hex pieces, <c>the pass key N is u u u u . remember it .</c>, at depths drawn without replacement from 20
/// evenly spaced ratios in [0.1, 0.9] (sorted, so key N comes before key N + 1), then every key asked in order,
/// <c>question the pass key N is</c> → its pieces. Not part of the scored suite (and not in <see cref="TaskSuite.All"/>, so
/// the suite's evaluation sets and curricula are unchanged); the mask trainers draw it directly.
/// </summary>
public sealed class MultiPasskey : LongContextTask
{
    /// <summary>DuoAttention's official setting: 10 pass keys.</summary>
    public MultiPasskey(int keys = 10)
    {
        if (keys < 1 || keys > 20) throw new ArgumentOutOfRangeException(nameof(keys), keys, "1 to 20 pass keys (20 depth slots)");
        Keys = keys;
    }

    public int Keys { get; }
    public override string Name => $"passkey_{Keys}";
    public override string Category => "Passkey";
    public override string Description => $"{Keys} numbered pass keys of 4 hex pieces in filler; all asked in order (DuoAttention's training data)";
    public override int TrainingQuestions => Keys;
    public override int MinLength => Keys * 24 + 32;
    public override int MaxAnswerTokens(int length) => 8;
    public override double ChanceScore(int length) => Math.Pow(1.0 / V.Hex.Count, 4);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        if (questions != Keys) throw new ArgumentException($"{Name} asks all {Keys} keys (got {questions} questions)");
        var keys = Enumerable.Range(0, Keys).Select(_ => Enumerable.Range(0, 4).Select(_ => V.Hex.Sample(rng)).ToArray()).ToArray();
        int[] Label(int i) => [.. V.Ids("the pass key"), V.Numbers[i + 1], V["is"]];
        var needles = keys.Select((k, i) => (int[])[.. Label(i), .. k, .. V.Ids(". remember it .")]).ToArray();
        int ctx = length - QaTokens(1 + Label(0).Length, 4, Keys);
        int filler = ctx - 1 - needles.Sum(n => n.Length);
        if (filler < 0) throw new ArgumentException($"{Keys} pass keys do not fit in a context of {ctx} tokens");
        // depth ratios: Keys of the 20 points linspace(0.1, 0.9, 20), without replacement, sorted
        var ratios = Enumerable.Range(0, 20).OrderBy(_ => rng.Next()).Take(Keys).Order().Select(i => 0.1 + 0.8 * i / 19).ToArray();
        var tokens = new List<int>(ctx) { V.BosId };
        int done = 0;
        for (int i = 0; i < Keys; i++)
        {
            int cut = (int)(filler * ratios[i]);
            FillerText.Append(rng, cut - done, tokens);
            done = cut;
            tokens.AddRange(needles[i]);
        }
        FillerText.Append(rng, filler - done, tokens);
        return Make(seed, length, tokens.ToArray(),
            Enumerable.Range(0, Keys).Select(i => new QuestionAnswer([V["question"], .. Label(i)], keys[i])));
    }
}
