namespace KvNotebooks.Tasks;

/// <summary>
/// DuoAttention's training-data analog: one pass key (four hex pieces) hidden in filler,
/// <c>the pass key is u u u u . remember it .</c>; asked for it at the end.
/// </summary>
public sealed class Passkey : LongContextTask
{
    public override string Name => "passkey";
    public override string Category => "Passkey";
    public override string Description => "one pass key of 4 hex pieces in filler; answer it (SubEM)";
    public override int TrainingQuestions => 1;
    /// <summary>Short enough for the first stage of a curriculum (TRAINING-NOTES.md: retrieval forms at 32 tokens, not at 512).</summary>
    public override int MinLength => 32;
    public override int MaxAnswerTokens(int length) => 8;
    public override double ChanceScore(int length) => Math.Pow(1.0 / V.Hex.Count, 4);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        var key = Enumerable.Range(0, 4).Select(_ => V.Hex.Sample(rng)).ToArray();
        int[] needle = [.. V.Ids("the pass key is"), .. key, .. V.Ids(". remember it .")];
        var q = (int[])[V["question"], .. V.Ids("the pass key is")];
        int ctx = length - QaTokens(q.Length, 4, questions);
        var (tokens, _) = Haystack.Build(rng, ctx, [needle]);
        return Make(seed, length, tokens, Enumerable.Repeat(new QuestionAnswer(q, key), questions));
    }
}
