using System.CommandLine;
using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;

namespace KvNotebooks.Cli.Commands;

/// <summary>
/// The options that choose a method and configure it, generated from a <see cref="MethodRegistry"/>: <c>--method</c>,
/// one option per knob of any method (<c>--pool-kernel</c>, <c>--sink</c>, …; a knob given to a method that does not
/// have it is an error naming the methods that do), the schedule options of the token scorers, and the storage
/// options (<c>--kv-bits</c>, <c>--gqa</c>). Shared by run, eval, logits and footprint; sweep takes lists instead
/// (<see cref="KnobListOptions"/>).
/// </summary>
internal sealed class MethodOptions
{
    public MethodOptions(MethodRegistry registry, string defaultMethod = "full")
    {
        Registry = registry;
        Method = new("--method")
        {
            Description = $"{string.Join(" | ", registry.Methods.Select(m => m.Name))} (kvnb methods list says what each does)",
            Required = defaultMethod.Length == 0,
        };
        if (defaultMethod.Length > 0) Method.DefaultValueFactory = _ => defaultMethod;
        Knobs = registry.Knobs.Select(k => (k, new Option<string?>("--" + k.Name) { Description = KnobHelp(registry, k) })).ToList();
    }

    public MethodRegistry Registry { get; }
    public readonly Option<int?> Chunk = new("--chunk") { Description = "Pre-fill chunk size C (default: a single pre-fill)" };
    public readonly Option<string> Method;
    public readonly Option<string?> Curve = new("--curve") { Description = "Name of the curve the rows belong to (default: the method and schedule, e.g. pyramidkv/patched)" };
    /// <summary>One option per knob of the registry's methods.</summary>
    public readonly IReadOnlyList<(Knob Knob, Option<string?> Option)> Knobs;
    public readonly ScheduleOptions Schedule = new();
    public readonly StorageOptions Storage = new();

    /// <summary>"pyramidkv: β (…) (default 20)".</summary>
    internal static string KnobHelp(MethodRegistry registry, Knob k) =>
        $"{string.Join("/", registry.Owners(k).Select(m => m.Name))}: {k.Description[(k.Description.IndexOf(':') + 1)..].Trim()}" +
        (k.DefaultValue is { } d ? $" (default {k.Format(d)})" : "");

    public void AddTo(Command cmd, bool withChunk = true)
    {
        if (withChunk) cmd.Options.Add(Chunk);
        cmd.Options.Add(Method);
        cmd.Options.Add(Curve);
        foreach (var o in Schedule.All) cmd.Options.Add(o);
        foreach (var (_, o) in Knobs) cmd.Options.Add(o);
        foreach (var o in Storage.All) cmd.Options.Add(o);
    }

    /// <summary>The method and every knob as plain data (validated except for model-dependent checks).</summary>
    public MethodSpec Spec(ParseResult p, bool chunked)
    {
        var method = Registry.Get(p.GetValue(Method)!);
        var values = KnobValues.Empty;
        foreach (var (knob, option) in Knobs)
        {
            if (p.GetValue(option) is not { } text) continue;
            if (!method.Knobs.Any(k => k.Name == knob.Name))
                throw new ArgumentException($"--{knob.Name} applies to {string.Join(", ", Registry.Owners(knob).Select(m => m.Name))}, not '{method.Name}'");
            values = values.With(method.Knobs.First(k => k.Name == knob.Name), knob.Parse(text));
        }
        bool scored = method.Kind == MethodKind.ScoresTokens;
        if (!scored && Schedule.AnyGiven(p))
            throw new ArgumentException($"--schedule, --evict, --budget and the decode options apply to the score-based methods ({Registry.NamesOf(MethodKind.ScoresTokens)}), not '{method.Name}'");
        var spec = new MethodSpec(method, values)
        {
            Schedule = scored ? Schedule.Create(p, chunked) : null,
            Storage = Storage.Create(p),
            Curve = p.GetValue(Curve) is { } curve ? CheckCurve(curve) : null,
        };
        spec.Validate();
        return spec;
    }

    /// <summary>A curve name: non-empty, no ';' ',' '|' or line breaks (it goes into CSV rows and keys).</summary>
    public static string CheckCurve(string curve) =>
        curve.Trim().Length > 0 && curve.IndexOfAny([';', ',', '|', '\n', '\r', '"']) < 0 ? curve.Trim()
            : throw new ArgumentException($"--curve '{curve}': a curve name is non-empty and has no ; , | \" or line break");

    public Chunking Chunking(ParseResult p)
    {
        int? c = p.GetValue(Chunk);
        if (c is <= 0) throw new ArgumentException($"--chunk must be positive (got {c})");
        return c is { } size ? Footprint.Chunking.Of(size) : Footprint.Chunking.None;
    }
}

/// <summary>How KVs are stored, apart from what is evicted: shared by run, eval, logits and footprint.</summary>
internal sealed class StorageOptions
{
    public readonly Option<string> Gqa = new("--gqa") { Description = "Score-based methods: shared (one kept set per KV head, scores averaged over the group; the paper's +C) | replicated (one copy per query head, as the original code)", DefaultValueFactory = _ => "shared" };
    public readonly Option<int?> KvBits = new("--kv-bits") { Description = "Store KVs quantized at 2 | 4 | 8 bits under any method (KIVI layout; default: full precision)" };
    public readonly Option<string?> KvDtype = new("--kv-dtype") { Description = "Store KVs as fp32 (default) | fp16 | bf16 under any method (whole groups of --kv-group-size tokens older than --kv-residual)" };
    public readonly Option<int> KvGroup = new("--kv-group-size") { Description = "With --kv-bits or --kv-dtype: tokens per group (and channels per value group of codes)", DefaultValueFactory = _ => 32 };
    public readonly Option<int?> KvResidual = new("--kv-residual") { Description = "With --kv-bits or --kv-dtype: newest tokens kept in fp32 (default 128 for codes, 0 for fp16/bf16)" };

    public IEnumerable<Option> All => [Gqa, KvBits, KvDtype, KvGroup, KvResidual];

    public KvStorage Create(ParseResult p)
    {
        string gqa = p.GetValue(Gqa)!.ToLowerInvariant();
        if (gqa is not ("shared" or "replicated")) throw new ArgumentException($"--gqa must be shared or replicated (got '{gqa}')");
        int? bits = p.GetValue(KvBits);
        string dtype = (p.GetValue(KvDtype) ?? "fp32").ToLowerInvariant();
        if (dtype is not ("fp32" or "fp16" or "bf16")) throw new ArgumentException($"--kv-dtype must be fp32, fp16 or bf16 (got '{dtype}')");
        if (bits is not null && dtype != "fp32") throw new ArgumentException("give either --kv-bits (codes) or --kv-dtype (16-bit floats), not both");
        if (bits is null && dtype == "fp32" && (ScheduleOptions.Given(p, KvGroup) || ScheduleOptions.Given(p, KvResidual)))
            throw new ArgumentException("--kv-group-size and --kv-residual apply with --kv-bits or --kv-dtype fp16|bf16");
        KvQuantization? q = bits is { } b ? new KvQuantization(b, p.GetValue(KvGroup), p.GetValue(KvResidual) ?? 128)
            : dtype == "fp32" ? null : KvQuantization.Float16(dtype == "bf16", p.GetValue(KvGroup), p.GetValue(KvResidual) ?? 0);
        if (q is not null)
        {
            if (q.Format == KvFormat.Codes && q.Bits is not (2 or 4 or 8)) throw new ArgumentException($"--kv-bits must be 2, 4 or 8 (got {q.Bits})");
            if (q.GroupSize < 1) throw new ArgumentException($"--kv-group-size must be ≥ 1 (got {q.GroupSize})");
            if (q.Residual < 0) throw new ArgumentException($"--kv-residual must be ≥ 0 (got {q.Residual})");
        }
        return new KvStorage(gqa == "replicated", q);
    }
}

/// <summary>Sweep's form of the knob options: each takes a comma-separated list (or a:b:step range) of values, applied
/// to every method of the grid that has the knob.</summary>
internal sealed class KnobListOptions
{
    /// <summary>Plural spellings older sweeps used.</summary>
    private static readonly Dictionary<string, string> Aliases = new() { ["window"] = "--windows" };

    public KnobListOptions(MethodRegistry registry)
    {
        Options = registry.Knobs.Select(k =>
        {
            var o = new Option<string?>("--" + k.Name) { Description = MethodOptions.KnobHelp(registry, k) + "; a list or a:b:step range sweeps it" };
            if (Aliases.TryGetValue(k.Name, out var alias)) o.Aliases.Add(alias);
            return (k, o);
        }).ToList();
        Registry = registry;
    }

    public MethodRegistry Registry { get; }
    public readonly IReadOnlyList<(Knob Knob, Option<string?> Option)> Options;

    /// <summary>The knob lists given, by knob name; each must belong to a method of <paramref name="methods"/>.</summary>
    public Dictionary<string, IReadOnlyList<object>> Values(ParseResult p, IReadOnlyList<MethodDescriptor> methods)
    {
        var values = new Dictionary<string, IReadOnlyList<object>>();
        foreach (var (knob, option) in Options)
        {
            if (p.GetValue(option) is not { } text) continue;
            if (!methods.Any(m => m.Knobs.Any(k => k.Name == knob.Name)))
                throw new ArgumentException($"--{knob.Name} applies to {string.Join(", ", Registry.Owners(knob).Select(m => m.Name))}, and --methods has none");
            values[knob.Name] = knob.ParseList(text);
        }
        return values;
    }
}
