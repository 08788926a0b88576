using System.Globalization;
using KvNotebooks.Cache;
using KvNotebooks.Footprint;
using KvNotebooks.Model;

namespace KvNotebooks.Eviction;

/// <summary>
/// A KV method configured, as plain data: the method (<see cref="MethodDescriptor"/>), its knob values, for a token
/// scorer its <see cref="Schedule"/>, and how KVs are stored (<see cref="Storage"/>: precision, quantization, GQA
/// layout). It builds the method (<see cref="Create"/>), names its curve (<see cref="Label"/>: what varies along a
/// curve, the eviction rate, bits or window, is left out), writes its full configuration as one canonical line
/// (<see cref="Describe"/>, a result row's <c>method_config</c> and what a resumed sweep matches on) and asks the
/// accountant for its footprint (<see cref="Footprint"/>). Only the knobs that apply to the method appear.
/// </summary>
public sealed record MethodSpec(MethodDescriptor Method, KnobValues Knobs)
{
    /// <summary>A token scorer's schedule (null: post-fill, evict 0.5).</summary>
    public EvictionSchedule? Schedule { get; init; }
    /// <summary>How the session stores KVs for this method (default: fp32, one copy per KV head).</summary>
    public KvStorage Storage { get; init; } = KvStorage.Default;
    /// <summary>The curve's name when the default (<see cref="Label"/>) does not say it: e.g. "prulong" for masks trained
    /// at each target t evaluated at t (one mask file per point), "prulong@0.7" for one mask file at every sparsity.</summary>
    public string? Curve { get; init; }

    /// <summary>Full attention: nothing evicted.</summary>
    public static MethodSpec Full { get; } = FullAttention.Descriptor.Spec();

    /// <summary>The method named <paramref name="name"/> (of <paramref name="registry"/>, default the built-in one) at its defaults.</summary>
    public static MethodSpec Of(string name, MethodRegistry? registry = null) => (registry ?? MethodRegistry.BuiltIn).Get(name).Spec();

    /// <summary>The method's canonical (lower-case) name.</summary>
    public string Name => Method.Name;
    /// <summary>Whether the method scores KVs and runs on a schedule.</summary>
    public bool IsScored => Method.Kind == MethodKind.ScoresTokens;

    /// <summary>The value of one of the method's knobs.</summary>
    public T Get<T>(Knob<T> knob) where T : notnull => Knobs.Get(knob);
    /// <summary>A copy with <paramref name="knob"/> set.</summary>
    public MethodSpec With<T>(Knob<T> knob, T value) where T : notnull => this with { Knobs = Knobs.With(knob, value) };

    /// <summary>The schedule a token scorer runs on (post-fill, evict 0.5 by the accounting rule when none was given; a
    /// method that fixes part of its schedule, Locret, applies it); null for other methods.</summary>
    public EvictionSchedule? ScheduleOrDefault
    {
        get
        {
            if (!IsScored) return null;
            var given = Schedule ?? EvictionSchedule.PostFill(EvictionBudget.FractionPlusWindow(0.5));
            return Method.OwnSchedule is { } own ? own(this, given) : given;
        }
    }
    /// <summary>The schedule of a token scorer (throws for other methods).</summary>
    public EvictionSchedule EffectiveSchedule => ScheduleOrDefault ?? throw new InvalidOperationException($"{Name} has no schedule");
    /// <summary>How KVs are stored: the method's own storage (quantized KV), else <see cref="Storage"/>.</summary>
    public KvStorage EffectiveStorage => Method.Storage?.Invoke(this) ?? Storage;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that does not apply or is impossible
    /// (without a model; <see cref="Create"/> also checks against the model).</summary>
    public void Validate()
    {
        foreach (var k in Method.Knobs) if (Knobs.Has(k)) k.Check(Knobs.Value(k));
        if (Schedule is not null && !IsScored)
            throw new ArgumentException($"--schedule, --evict, --budget and the decode options apply to the score-based methods, not '{Name}'");
        Schedule?.Validate();
        if (Storage.ReplicatePerQueryHead && !IsScored)
            throw new ArgumentException($"--gqa replicated applies to the score-based methods, not '{Name}'");
        if (Method.Storage is not null && Storage != KvStorage.Default)
            throw new ArgumentException($"{Name} chooses its own storage; --kv-bits and --gqa replicated apply to the other methods");
        if (IsScored && ScheduleOrDefault!.Kind == ScheduleKind.Patched && Method.Scorer is { } make && make(this).Queries == ScoreQueries.None)
            throw new ArgumentException($"{Name} scores without queries, so patching (appending the prompt's last tokens as queries) cannot change it; use --schedule naive");
    }

    /// <summary>Builds the method for a model (throws <see cref="ArgumentException"/> on impossible settings).</summary>
    public IEvictionMethod Create(LlamaConfig config)
    {
        Validate();
        EffectiveStorage.Quantization?.Validate(config.HeadDim);
        if (!Method.Runs) throw new ArgumentException($"{Name} is counted by the accountant (kvnb footprint) but the engine cannot run it yet");
        return IsScored ? new ScheduledEviction(Method.Scorer!(this), EffectiveSchedule) : Method.Create!(this, config);
    }

    /// <summary>The analytic accountant's footprint and peak KV for a sequence (throws when the method is not modelled).</summary>
    public FootprintResult Footprint(FootprintShape shape)
    {
        Validate();
        if (Method.Footprint is null) throw new ArgumentException($"the accountant has no formula for {Name}");
        return Method.Footprint(this, shape);
    }

    /// <summary>
    /// The curve this configuration belongs to: the method's name, or for a score-based method "name/schedule"
    /// (e.g. "pyramidkv/patched"), with "/replicated" (GQA copies per query head), "/code" (rates by the paper code's
    /// budget rule instead of the accounting rule, docs/footprint.md), "/budget" (absolute budgets) and "/decode-evict"
    /// when set; "/kv4" etc. over quantized storage.
    /// </summary>
    public string Label
    {
        get
        {
            if (Curve is not null) return Curve;
            string label = Name;
            if (IsScored)
            {
                var s = EffectiveSchedule;
                label += $"/{s.Kind.ToString().ToLowerInvariant()}";
                if (Storage.ReplicatePerQueryHead) label += "/replicated";
                if (s.Budget.Kind == BudgetKind.Evict) label += "/code";
                if (s.Budget.Kind == BudgetKind.Tokens) label += "/budget";
                if (s.EvictDuringDecode) label += "/decode-evict";
            }
            if (Method.Storage is null && Storage.Quantization is { } q) label += q.Format == KvFormat.Codes ? $"/kv{I(q.Bits)}" : $"/{q.Name}";
            return label;
        }
    }

    /// <summary>
    /// The canonical configuration line, e.g.
    /// <c>pyramidkv;schedule=patched;evict=0.7;rule=accounting;obs=64;pool=5;beta=20;gqa=shared;chunk=1024</c>.
    /// A rate always names its budget rule (rule=accounting or rule=code); lines written before it did are read by
    /// <see cref="ReadLegacyRule"/>.
    /// </summary>
    public string Describe(Chunking chunking)
    {
        var parts = new List<string> { Name };
        var sc = ScheduleOrDefault;
        if (sc is not null)
        {
            parts.Add($"schedule={sc.Kind.ToString().ToLowerInvariant()}");
            parts.Add(sc.Budget.Kind switch
            {
                BudgetKind.Tokens => $"budget={I(sc.Budget.Tokens)}",
                BudgetKind.EvictPlusWindow => $"evict={D(sc.Budget.Evict)};rule=accounting",
                _ => $"evict={D(sc.Budget.Evict)};rule=code",
            });
            parts.Add($"obs={I(sc.Window)}");
            if (sc.Kind == ScheduleKind.PostFill && sc.CapacityMultiple != 64) parts.Add($"capacity-multiple={I(sc.CapacityMultiple)}");
        }
        foreach (var k in Method.Knobs) parts.Add($"{k.Key}={k.Format(Knobs.Value(k))}");
        if (sc is not null)
        {
            parts.Add(Storage.ReplicatePerQueryHead ? "gqa=replicated" : "gqa=shared");
            if (sc.EvictDuringDecode)
            {
                parts.Add("decode-evict");
                if (sc.DecodeBudget > 0) parts.Add($"decode-budget={I(sc.DecodeBudget)}");
                if (sc.DecodeInterval != 1) parts.Add($"decode-interval={I(sc.DecodeInterval)}");
            }
        }
        if (Method.Storage is null && Storage.Quantization is { } q)
            parts.Add(q.Format == KvFormat.Codes ? $"kv-bits={I(q.Bits)};kv-group={I(q.GroupSize)};kv-residual={I(q.Residual)}"
                : $"kv-dtype={q.Name};kv-group={I(q.GroupSize)};kv-residual={I(q.Residual)}");
        parts.Add($"chunk={chunking}");
        return string.Join(';', parts);
    }

    /// <summary>The swept value that places this configuration on its curve, for tables and hover text:
    /// "p=0.7", "budget=512", "4-bit", "window=256", "sparsity=0.7", or "" for full attention.</summary>
    public string Point
    {
        get
        {
            if (IsScored)
                return EffectiveSchedule.Budget.Kind == BudgetKind.Tokens ? $"budget={I(EffectiveSchedule.Budget.Tokens)}" : $"p={D(EffectiveSchedule.Budget.Evict)}";
            if (Method.Point is { } point) return point(this);
            return Method.CurveKnob is { } k ? $"{k.Key}={k.Format(Knobs.Value(k))}" : "";
        }
    }

    public override string ToString() => Describe(Chunking.None);

    /// <summary>
    /// A result row's (method, method_config) in today's canonical form. Until the accounting rule became the default,
    /// a rate by the paper code's rule was written without a rule ("evict=0.7", label "pyramidkv/patched") and one by
    /// the accounting rule as "evict=0.7;rule=accounting" with the label ".../accounting". Those rows are read as what
    /// they are: the first gains ";rule=code" and "/code", the second loses "/accounting". Current lines pass unchanged,
    /// so reading twice changes nothing.
    /// </summary>
    public static (string Label, string Config) ReadLegacyRule(string label, string config)
    {
        var parts = config.Split(';').ToList();
        int evict = parts.FindIndex(x => x.StartsWith("evict=", StringComparison.Ordinal));
        if (evict < 0) return (label, config);
        var segments = label.Split('/').ToList();
        if (!parts.Any(x => x.StartsWith("rule=", StringComparison.Ordinal)))
        {
            parts.Insert(evict + 1, "rule=code");
            if (segments.Count >= 2 && !segments.Contains("code"))
                segments.Insert(segments.Count > 2 && segments[2] == "replicated" ? 3 : 2, "code");
        }
        else if (parts.Contains("rule=accounting")) segments.Remove("accounting");
        return (string.Join('/', segments), string.Join(';', parts));
    }

    private static string I(int x) => x.ToString(CultureInfo.InvariantCulture);
    private static string D(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}
