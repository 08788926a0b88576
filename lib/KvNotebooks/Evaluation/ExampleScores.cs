using System.Collections;
using System.Globalization;

namespace KvNotebooks.Evaluation;

/// <summary>
/// The per-example scores behind a result row, in example order: value i is example i of the row's set (the fixed
/// set's example i, or the i-th example generated from a seed base). Written in the CSV as one compact column,
/// the scores separated by spaces ("1 0 0.5 1"), so that confidence intervals can be computed from committed rows.
/// Equal when the scores are equal.
/// </summary>
public sealed class ExampleScores : IReadOnlyList<double>, IEquatable<ExampleScores>
{
    private readonly double[] _scores;

    /// <summary>Scores in [0, 1], at least one (throws <see cref="ArgumentException"/> otherwise).</summary>
    public ExampleScores(IEnumerable<double> scores)
    {
        _scores = scores.ToArray();
        if (_scores.Length == 0) throw new ArgumentException("per-example scores: none given");
        for (int i = 0; i < _scores.Length; i++)
            if (!(_scores[i] is >= 0 and <= 1))
                throw new ArgumentException($"per-example scores: example {i} scores {_scores[i].ToString("R", CultureInfo.InvariantCulture)}, outside [0, 1]");
    }

    public int Count => _scores.Length;
    public double this[int index] => _scores[index];
    /// <summary>The mean score (the row's <c>score</c>).</summary>
    public double Mean => _scores.Average();

    /// <summary>The CSV text: round-trip numbers separated by single spaces.</summary>
    public override string ToString() => string.Join(' ', _scores.Select(s => s.ToString("R", CultureInfo.InvariantCulture)));

    /// <summary>Reads <see cref="ToString"/>'s text; throws <see cref="FormatException"/> naming the bad item.</summary>
    public static ExampleScores Parse(string text)
    {
        var parts = text.Split(' ');
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out values[i]))
                throw new FormatException($"example {i}: '{parts[i]}' is not a number (scores are separated by single spaces)");
            if (!(values[i] is >= 0 and <= 1)) throw new FormatException($"example {i}: {parts[i]} is outside [0, 1]");
        }
        return new ExampleScores(values);
    }

    public bool Equals(ExampleScores? other) => other is not null && _scores.AsSpan().SequenceEqual(other._scores);
    public override bool Equals(object? obj) => Equals(obj as ExampleScores);
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (double s in _scores) h.Add(s);
        return h.ToHashCode();
    }

    public IEnumerator<double> GetEnumerator() => ((IEnumerable<double>)_scores).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _scores.GetEnumerator();
}
