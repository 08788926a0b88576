namespace KvNotebooks.Tasks;

/// <summary>
/// The "pre-training text" of the synthetic language, for next-token losses: filler text in which
/// earlier spans recur verbatim later in the document, so that predicting them needs attention far
/// back — what copying (induction) heads do in real text. PruLong's mask training uses it as its
/// natural-data analog; <see cref="CopyTask"/> trains on the repeated spans.
/// </summary>
public static class NaturalText
{
    /// <summary>&lt;bos&gt; then <paramref name="length"/> − 1 tokens: filler with a verbatim copy of an
    /// earlier span (8–32 tokens, from anywhere before) after every 32–191 tokens of filler (shorter gaps
    /// in short texts, so that every text of 128 tokens or more holds at least one copy).
    /// Returns the tokens and, for each copy, (start, source start, length).</summary>
    public static (int[] Tokens, List<(int Start, int Source, int Length)> Copies) GenerateWithCopies(Random rng, int length)
    {
        if (length < 2) throw new ArgumentOutOfRangeException(nameof(length), length, "natural text needs at least 2 tokens");
        var tokens = new List<int>(length) { Vocabulary.Default.BosId };
        var copies = new List<(int, int, int)>();
        while (tokens.Count < length)
        {
            FillerText.Append(rng, Math.Min(length - tokens.Count, 32 + rng.Next(Math.Min(160, length / 4))), tokens);
            int left = length - tokens.Count;
            if (left < 8) continue;
            int span = Math.Min(left, 8 + rng.Next(25));
            int from = 1 + rng.Next(tokens.Count - span);
            copies.Add((tokens.Count, from, span));
            for (int i = 0; i < span; i++) tokens.Add(tokens[from + i]);
        }
        return (tokens.ToArray(), copies);
    }

    public static int[] Generate(int seed, int length) => GenerateWithCopies(new Random(seed), length).Tokens;
}

/// <summary>
/// Pre-training signal for copying: natural text whose loss is on the repeated spans only (every
/// token of a copy after its first, which is what looking back at the source predicts). Not a scored
/// category; it teaches the n-gram matching every retrieval task builds on.
/// </summary>
public sealed class CopyTask : LongContextTask
{
    public override string Name => "copy";
    public override string Category => "Pretrain";
    public override string Description => "natural text with verbatim repeats; loss on the repeated tokens (teacher-forced accuracy)";
    public override int TrainingQuestions => 1;
    public override int MaxAnswerTokens(int length) => 0;
    public override double ChanceScore(int length) => 0;
    public override double Score(QuestionAnswer qa, ReadOnlySpan<int> generated) => 0;

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        var (tokens, copies) = NaturalText.GenerateWithCopies(rng, length);
        var positions = copies.SelectMany(c => Enumerable.Range(c.Start, c.Length - 1)).Where(p => p + 1 < tokens.Length).ToArray();
        return new TaskExample(Name, length, seed, tokens, []) { ContextLossPositions = positions };
    }
}
