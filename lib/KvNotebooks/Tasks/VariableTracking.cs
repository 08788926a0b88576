namespace KvNotebooks.Tasks;

/// <summary>
/// LongQA, multi-hop reasoning over the whole context (RULER's variable tracking): chains
/// <c>let X = N ;</c> … <c>let Y = X ;</c> … <c>let Z = Y ;</c> scattered in filler, interleaved with
/// other chains. Asked <c>question Z =</c>, answer the chain back to its number: <c>Y = X = N</c>, one
/// lookup per hop. Scored by exact match of the whole chain.
/// </summary>
public sealed class VariableTracking : LongContextTask
{
    public const int Hops = 2;
    public override string Name => "var_track";
    public override string Category => "LongQA";
    public override string Description => "chains 'let Z = Y', 'let Y = X', 'let X = N'; asked Z, answer 'Y = X = N' (SubEM)";
    public override int TrainingQuestions => 4;
    public override int MaxAnswerTokens(int length) => 2 * Hops + 4;
    public override double ChanceScore(int length) => 1.0 / V.Numbers.Count / Math.Pow(Chains(length) * (Hops + 1), Hops);
    private static int Chains(int length) => Haystack.Count(length, 200, 2, 16);

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int chains = Math.Max(Chains(length), questions);
        var names = V.Names.SampleDistinct(rng, chains * (Hops + 1));
        var values = Enumerable.Range(0, chains).Select(_ => V.Numbers.Sample(rng)).ToArray();
        int let = V["let"], eq = V["="], semi = V[";"];
        // Statement order: each chain's root first, then its hops in order; chains interleaved at random.
        var order = Enumerable.Range(0, chains).SelectMany(c => Enumerable.Repeat(c, Hops + 1)).OrderBy(_ => rng.Next()).ToArray();
        var next = new int[chains];
        var items = new List<int[]>();
        foreach (int c in order)
        {
            int h = next[c]++;
            int v = names[c * (Hops + 1) + h];
            int rhs = h == 0 ? values[c] : names[c * (Hops + 1) + h - 1];
            items.Add([let, v, eq, rhs, semi]);
        }
        int ctx = length - QaTokens(3, 2 * Hops + 1, questions);
        var (tokens, _) = Haystack.Build(rng, ctx, items);
        var asked = Enumerable.Range(0, chains).OrderBy(_ => rng.Next()).Take(questions);
        return Make(seed, length, tokens, asked.Select(c =>
        {
            var answer = new List<int>();
            for (int h = Hops - 1; h >= 0; h--) answer.AddRange([names[c * (Hops + 1) + h], eq]);
            answer.Add(values[c]);
            return new QuestionAnswer([V["question"], names[c * (Hops + 1) + Hops], eq], answer.ToArray());
        }));
    }
}
