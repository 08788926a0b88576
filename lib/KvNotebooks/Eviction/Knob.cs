using System.Globalization;

namespace KvNotebooks.Eviction;

/// <summary>
/// One setting of a method, declared once in the method's file: its command-line name (<c>--pool-kernel</c>),
/// its key in a result row's canonical configuration line (<c>pool=5</c>), its default, what values it accepts
/// and the message when one is refused. The CLI options of <c>kvnb run</c>, <c>eval</c>, <c>sweep</c> and
/// <c>footprint</c> and the configuration lines of result rows are generated from these.
/// </summary>
public abstract class Knob
{
    private protected Knob(string name, string key, string description)
    {
        if (name.Length == 0 || name.StartsWith('-')) throw new ArgumentException($"knob name '{name}' must be a bare option name, e.g. pool-kernel");
        Name = name;
        Key = key;
        Description = description;
    }

    /// <summary>The option name without dashes: <c>pool-kernel</c>.</summary>
    public string Name { get; }
    /// <summary>The key in a configuration line: <c>pool</c>.</summary>
    public string Key { get; }
    /// <summary>One line for help texts.</summary>
    public string Description { get; }
    /// <summary>The value's type (int, double, string).</summary>
    public abstract Type ValueType { get; }
    /// <summary>The default as an object (null for a knob without one, such as a file path).</summary>
    public abstract object? DefaultValue { get; }

    /// <summary>Parses command-line text into a checked value; throws <see cref="ArgumentException"/> naming the option.</summary>
    public abstract object Parse(string text);
    /// <summary>Parses a comma-separated list, with <c>a:b:step</c> ranges for numbers (sweeps).</summary>
    public abstract IReadOnlyList<object> ParseList(string text);
    /// <summary>The canonical text of a value, as a configuration line writes it.</summary>
    public abstract string Format(object? value);
    /// <summary>Throws <see cref="ArgumentException"/> naming the option when <paramref name="value"/> is refused.</summary>
    public abstract void Check(object? value);

    public override string ToString() => $"--{Name}";
}

/// <summary>A knob of type <typeparamref name="T"/> (int, double or string).</summary>
public sealed class Knob<T> : Knob where T : notnull
{
    private readonly Func<T, string?>? _rule;
    private readonly Func<T, string>? _format;

    /// <param name="name">Option name without dashes.</param>
    /// <param name="key">Key in configuration lines.</param>
    /// <param name="default">Default value; null for a knob that must be given when the method needs it (a path).</param>
    /// <param name="description">Help text.</param>
    /// <param name="rule">Returns null for an accepted value, else what is wrong ("must be odd").</param>
    /// <param name="format">How a configuration line writes the value (default: invariant culture; a path, its file name).</param>
    public Knob(string name, string key, T? @default, string description, Func<T, string?>? rule = null, Func<T, string>? format = null)
        : base(name, key, description)
    {
        _format = format;
        if (typeof(T) != typeof(int) && typeof(T) != typeof(double) && typeof(T) != typeof(string))
            throw new ArgumentException($"knob --{name}: type {typeof(T).Name} is not int, double or string");
        Default = @default;
        _rule = rule;
        if (@default is not null) Check(@default);
    }

    public T? Default { get; }
    public override Type ValueType => typeof(T);
    public override object? DefaultValue => Default;

    public override object Parse(string text)
    {
        text = text.Trim();
        object value;
        if (typeof(T) == typeof(int))
            value = int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? i
                : throw new ArgumentException($"--{Name}: '{text}' is not an integer");
        else if (typeof(T) == typeof(double))
            value = double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) ? d
                : throw new ArgumentException($"--{Name}: '{text}' is not a number");
        else
            value = text.Length > 0 ? text : throw new ArgumentException($"--{Name}: empty value");
        Check(value);
        return value;
    }

    public override IReadOnlyList<object> ParseList(string text)
    {
        IReadOnlyList<object> values = typeof(T) == typeof(int) ? [.. Evaluation.SweepRange.Ints(text, "--" + Name).Cast<object>()]
            : typeof(T) == typeof(double) ? [.. Evaluation.SweepRange.Doubles(text, "--" + Name).Cast<object>()]
            : [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
        if (values.Count == 0) throw new ArgumentException($"--{Name}: no values");
        foreach (var v in values) Check(v);
        return values;
    }

    public override string Format(object? value) => value switch
    {
        null => "",
        T t when _format is not null => _format(t),
        int i => i.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    public override void Check(object? value)
    {
        if (value is not T t) throw new ArgumentException($"--{Name}: expected a {typeof(T).Name.ToLowerInvariant()}, got {value ?? "nothing"}");
        if (_rule?.Invoke(t) is { } problem) throw new ArgumentException($"--{Name} {problem} (got {Format(t)})");
    }
}

/// <summary>The values a method configuration gives its knobs; a knob not given has its default.</summary>
public sealed class KnobValues
{
    private readonly Dictionary<string, object> _values;

    private KnobValues(Dictionary<string, object> values) => _values = values;

    public static KnobValues Empty { get; } = new(new());

    /// <summary>The value of <paramref name="knob"/>: the one given, else its default (throws when it has none).</summary>
    public T Get<T>(Knob<T> knob) where T : notnull =>
        _values.TryGetValue(knob.Name, out var v) ? (T)v
        : knob.Default ?? throw new ArgumentException($"--{knob.Name} is needed ({knob.Description})");

    /// <summary>The value given or the default, as an object (null: neither).</summary>
    public object? Value(Knob knob) => _values.TryGetValue(knob.Name, out var v) ? v : knob.DefaultValue;

    /// <summary>Whether a value was given for the knob.</summary>
    public bool Has(Knob knob) => _values.ContainsKey(knob.Name);

    /// <summary>A copy with <paramref name="knob"/> set to <paramref name="value"/> (checked).</summary>
    public KnobValues With(Knob knob, object value)
    {
        knob.Check(value);
        return new(new Dictionary<string, object>(_values) { [knob.Name] = value });
    }

    public KnobValues With<T>(Knob<T> knob, T value) where T : notnull => With((Knob)knob, value);

    public override string ToString() => string.Join(", ", _values.Select(kv => $"{kv.Key}={kv.Value}"));
}
