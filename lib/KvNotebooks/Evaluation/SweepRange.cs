using System.Globalization;

namespace KvNotebooks.Evaluation;

/// <summary>
/// The value lists of a sweep, written as comma-separated items, each a single value or an inclusive
/// range <c>start:end:step</c>: "0.1:0.9:0.1" is 0.1, 0.2, …, 0.9; "0.3,0.5:0.9:0.2" is 0.3, 0.5, 0.7,
/// 0.9. Values keep their first order, duplicates are dropped, and range values are rounded to 10 decimals
/// so that 0.1 + 2·0.1 is written 0.3. Errors are <see cref="ArgumentException"/>s that quote the option.
/// </summary>
public static class SweepRange
{
    /// <summary>The most values one list may expand to (a typo such as a step of 0.0001 is caught).</summary>
    public const int MaxValues = 1000;

    /// <summary>Parses a list of numbers and ranges.</summary>
    public static IReadOnlyList<double> Doubles(string text, string option)
    {
        var values = new List<double>();
        foreach (var item in Items(text, option))
        {
            var parts = item.Split(':');
            if (parts.Length == 1)
            {
                Add(values, Number(parts[0], item, option), option);
                continue;
            }
            if (parts.Length != 3) throw new ArgumentException($"{option}: '{item}' is neither a number nor a range start:end:step");
            double a = Number(parts[0], item, option), b = Number(parts[1], item, option), step = Number(parts[2], item, option);
            if (!(step > 0)) throw new ArgumentException($"{option}: range '{item}' needs a positive step");
            if (b < a) throw new ArgumentException($"{option}: range '{item}' ends before it starts");
            double count = Math.Floor((b - a) / step + 1e-9) + 1;
            if (count > MaxValues) throw new ArgumentException($"{option}: range '{item}' has {count:0} values (at most {MaxValues})");
            for (int i = 0; i < (int)count; i++) Add(values, Math.Round(a + i * step, 10), option);
        }
        return values;
    }

    /// <summary>Parses a list of integers and integer ranges; <paramref name="words"/> maps names
    /// (e.g. "none" → 0 for a single pre-fill) to values.</summary>
    public static IReadOnlyList<int> Ints(string text, string option, IReadOnlyDictionary<string, int>? words = null)
    {
        var values = new List<int>();
        foreach (var item in Items(text, option))
        {
            if (words is not null && words.TryGetValue(item.ToLowerInvariant(), out int w))
            {
                if (!values.Contains(w)) values.Add(w);
                continue;
            }
            var parts = item.Split(':');
            if (parts.Length == 1)
            {
                int v = Int(parts[0], item, option);
                if (!values.Contains(v)) values.Add(v);
                continue;
            }
            if (parts.Length != 3) throw new ArgumentException($"{option}: '{item}' is neither an integer nor a range start:end:step");
            int a = Int(parts[0], item, option), b = Int(parts[1], item, option), step = Int(parts[2], item, option);
            if (step <= 0) throw new ArgumentException($"{option}: range '{item}' needs a positive step");
            if (b < a) throw new ArgumentException($"{option}: range '{item}' ends before it starts");
            long count = ((long)b - a) / step + 1;
            if (count > MaxValues) throw new ArgumentException($"{option}: range '{item}' has {count} values (at most {MaxValues})");
            for (long v = a; v <= b; v += step)
                if (!values.Contains((int)v)) values.Add((int)v);
        }
        return values;
    }

    /// <summary>Comma-separated words, trimmed, duplicates dropped (case-insensitive), at least one.</summary>
    public static IReadOnlyList<string> Words(string text, string option) =>
        Items(text, option).Select(s => s.ToLowerInvariant()).Distinct().ToList();

    private static string[] Items(string text, string option)
    {
        var items = (text ?? "").Split(',', StringSplitOptions.TrimEntries);
        if (items.Length == 0 || items.Any(s => s.Length == 0))
            throw new ArgumentException($"{option}: '{text}' has an empty item (write values separated by commas, ranges as start:end:step)");
        return items;
    }

    private static void Add(List<double> values, double v, string option)
    {
        if (!values.Contains(v)) values.Add(v);
        if (values.Count > MaxValues) throw new ArgumentException($"{option}: more than {MaxValues} values");
    }

    private static double Number(string s, string item, string option) =>
        double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v
            : throw new ArgumentException($"{option}: '{s.Trim()}' in '{item}' is not a number");

    private static int Int(string s, string item, string option) =>
        int.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new ArgumentException($"{option}: '{s.Trim()}' in '{item}' is not an integer");
}
