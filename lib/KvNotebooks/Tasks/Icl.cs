namespace KvNotebooks.Tasks;

/// <summary>
/// ICL, HELMET's many-shot classification: demonstrations <c>input a b : L</c> where one of a, b is an
/// indicator word of the example's class and the other a neutral word; class labels are numbers
/// mapped at random per context, so only the demonstrations tell them. Answer the label of a new input
/// (a seen indicator with a fresh neutral word). Few labels (6) and many labels (32).
/// </summary>
public sealed class Icl : LongContextTask
{
    private readonly int _classes, _indicators;

    public Icl(int classes, int indicatorsPerClass, string name)
    {
        _classes = classes;
        _indicators = indicatorsPerClass;
        Name = name;
    }

    public static Icl Few { get; } = new(6, 4, "icl_few");
    public static Icl Many { get; } = new(32, 2, "icl_many");

    public override string Name { get; }
    public override string Category => "ICL";
    public override string Description => $"many-shot classification, {_classes} labels mapped at random per context (accuracy)";
    public override int TrainingQuestions => 8;
    public override int MaxAnswerTokens(int length) => 3;
    public override double ChanceScore(int length) => 1.0 / _classes;

    protected override TaskExample Build(Random rng, int seed, int length, int questions)
    {
        int ctx = length - QaTokens(4, 1, questions);
        int demos = (ctx - 1) / 6;
        var words = V.Filler.SampleDistinct(rng, _classes * _indicators);
        var indicator = Enumerable.Range(0, _classes).Select(c => words[(c * _indicators)..((c + 1) * _indicators)]).ToArray();
        var used = words.ToHashSet();
        var neutral = Enumerable.Range(V.Filler.Start, V.Filler.Count).Where(t => !used.Contains(t)).ToArray();
        var labels = V.Numbers.SampleDistinct(rng, _classes);
        int colon = V[":"], input = V["input"], nl = V[Vocabulary.Newline];
        int[] Input(int c, int ind)
        {
            int n = neutral[rng.Next(neutral.Length)];
            return rng.Next(2) == 0 ? [ind, n] : [n, ind];
        }
        var tokens = new List<int>(ctx) { V.BosId };
        FillerText.Append(rng, ctx - 1 - 6 * demos, tokens);
        var seen = new List<(int Class, int Indicator)>();
        for (int d = 0; d < demos; d++)
        {
            int c = rng.Next(_classes), ind = indicator[c][rng.Next(_indicators)];
            seen.Add((c, ind));
            tokens.AddRange([input, .. Input(c, ind), colon, labels[c], nl]);
        }
        if (seen.Count == 0) throw new ArgumentOutOfRangeException(nameof(length), length, $"{Name}: too short for any demonstration");
        return Make(seed, length, tokens.ToArray(), Enumerable.Range(0, questions).Select(_ =>
        {
            var (c, ind) = seen[rng.Next(seen.Count)];
            return new QuestionAnswer([input, .. Input(c, ind), colon], [labels[c]]);
        }));
    }
}
