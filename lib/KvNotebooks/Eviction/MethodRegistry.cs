namespace KvNotebooks.Eviction;

/// <summary>
/// The methods the CLI, sweeps and the accountant know, by name and alias. <see cref="BuiltIn"/> lists the project's
/// own (each declared in its file as a <see cref="MethodDescriptor"/>); <see cref="With"/> makes a registry with more,
/// for a method defined elsewhere (a notebook, a test), without changing any shared state. Knobs that two methods
/// share (<c>--sink</c>, <c>--window</c>, <c>--pool-kernel</c>) are the same knob object, or at least agree on type
/// and default.
/// </summary>
public sealed class MethodRegistry
{
    private readonly Dictionary<string, MethodDescriptor> _byName = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Every method of the project. A new method is its file (descriptor included) and a line here.</summary>
    public static MethodRegistry BuiltIn { get; } = new([
        FullAttention.Descriptor,
        Streaming.Descriptor,
        HeadMask.Descriptor,
        DuoAttention.Descriptor,
        PruLong.Descriptor,
        SnapKV.Descriptor,
        PyramidKV.Descriptor,
        H2O.Descriptor,
        L2Norm.Descriptor,
        ZigZagKV.Descriptor,
        Locret.Descriptor,
        QuantizedKv.Descriptor,
    ]);

    public MethodRegistry(IEnumerable<MethodDescriptor> methods)
    {
        var list = new List<MethodDescriptor>();
        var knobs = new Dictionary<string, Knob>();
        foreach (var m in methods)
        {
            if (m.Name != m.Name.ToLowerInvariant() || m.Name.Length == 0 || m.Name.Contains(':') || m.Name.Contains(','))
                throw new ArgumentException($"method name '{m.Name}' must be lower-case, without ':' or ','");
            foreach (var name in m.Names)
                if (!_byName.TryAdd(name, m)) throw new ArgumentException($"method name '{name}' is taken by {_byName[name].Name}");
            foreach (var k in m.Knobs)
            {
                if (knobs.TryGetValue(k.Name, out var other) && (other.ValueType != k.ValueType || !Equals(other.DefaultValue, k.DefaultValue)))
                    throw new ArgumentException($"--{k.Name} of {m.Name} differs from the --{k.Name} another method declares (type or default)");
                knobs.TryAdd(k.Name, k);
            }
            if (m.Kind == MethodKind.ScoresTokens ? m.Create is not null : m.Scorer is not null)
                throw new ArgumentException($"{m.Name}: a {m.Kind} method is built by {(m.Kind == MethodKind.ScoresTokens ? "Scorer" : "Create")}");
            list.Add(m);
        }
        Methods = list;
        Knobs = [.. knobs.Values];
    }

    /// <summary>The methods, in the order given.</summary>
    public IReadOnlyList<MethodDescriptor> Methods { get; }
    /// <summary>Every knob of every method once (by option name), in first-declared order.</summary>
    public IReadOnlyList<Knob> Knobs { get; }

    /// <summary>A registry with <paramref name="more"/> methods after these.</summary>
    public MethodRegistry With(params MethodDescriptor[] more) => new([.. Methods, .. more]);

    /// <summary>The method named (or aliased) <paramref name="name"/>, or null.</summary>
    public MethodDescriptor? Find(string name) => _byName.GetValueOrDefault(name.Trim());

    /// <summary>The method named <paramref name="name"/>; throws <see cref="ArgumentException"/> listing the names.</summary>
    public MethodDescriptor Get(string name) => Find(name)
        ?? throw new ArgumentException($"unknown method '{name}'; choose one of {string.Join(", ", Methods.Select(m => m.Name))}");

    /// <summary>The methods that have <paramref name="knob"/> (by option name).</summary>
    public IEnumerable<MethodDescriptor> Owners(Knob knob) => Methods.Where(m => m.Knobs.Any(k => k.Name == knob.Name));

    /// <summary>The names of the methods of a kind, for help texts.</summary>
    public string NamesOf(MethodKind kind) => string.Join(", ", Methods.Where(m => m.Kind == kind).Select(m => m.Name));
}
