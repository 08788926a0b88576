using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Evaluation;

/// <summary>One run of a sweep: a method configuration at one chunking and context, on one task, on the examples
/// <see cref="ExampleSet"/> names.</summary>
public sealed record SweepPoint(MethodSpec Spec, Chunking Chunk, int Context, LongContextTask Task)
{
    /// <summary>The row's <c>example_set</c>: the fixed sets, or "seed:N".</summary>
    public string ExampleSet { get; init; } = EvalRow.FixedSet;

    /// <summary>The row's <c>method_config</c>.</summary>
    public string Config => Spec.Describe(Chunk);

    /// <summary>The <see cref="EvalRow.Key"/> this point's row has for <paramref name="model"/>.</summary>
    public string Key(string model) => EvalRow.MakeKey(model, Spec.Label, Config, Context, Chunk.Size, Task.Name, ExampleSet);
}

/// <summary>A grid expanded: its points in run order, and notes on combinations left out.</summary>
public sealed record SweepPlan(IReadOnlyList<SweepPoint> Points, IReadOnlyList<string> Notes)
{
    /// <summary>The distinct method configurations (one per <see cref="SweepPoint.Config"/>), in order.</summary>
    public IReadOnlyList<string> Configs => Points.Select(p => p.Config).Distinct().ToList();
}

/// <summary>
/// A sweep as plain data: methods × schedules × eviction rates × knob values × storage × chunkings × contexts ×
/// tasks, with <see cref="Examples"/> examples per task from the fixed sets. <see cref="Expand"/> turns it into
/// points. Every dimension applies only to the methods it concerns — rates and schedules to the token scorers, a
/// knob's values to the methods that declare the knob (<see cref="MethodRegistry"/>) — so one grid can hold the
/// full-attention baseline beside every curve.
/// </summary>
public sealed record SweepGrid
{
    /// <summary>The methods the names refer to (default: the project's own).</summary>
    public MethodRegistry Registry { get; init; } = MethodRegistry.BuiltIn;
    /// <summary>Method names; a token scorer may fix its schedule as "name:schedule" (e.g. "pyramidkv:patched"),
    /// otherwise it takes every one of <see cref="Schedules"/>.</summary>
    public IReadOnlyList<string> Methods { get; init; } = ["full"];
    /// <summary>Schedules for token scorers named without one: postfill | naive | patched. Empty: post-fill
    /// for a single pre-fill, naive when chunked (as <c>kvnb run</c>). A method that cannot take one (L2 cannot be
    /// patched) skips it, with a note.</summary>
    public IReadOnlyList<string> Schedules { get; init; } = [];
    /// <summary>Fractions p of each chunk's KVs evicted (token scorers).</summary>
    public IReadOnlyList<double> Evicts { get; init; } = [0.5];
    /// <summary>Pre-fill chunkings.</summary>
    public IReadOnlyList<Chunking> Chunks { get; init; } = [Chunking.None];
    /// <summary>Values of method knobs by option name (e.g. "bits" → 2, 4, 8; "window" → 64, 256): each applies to every
    /// method that declares the knob, which then runs once per value; knobs not listed keep their defaults.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<object>> Knobs { get; init; } = new Dictionary<string, IReadOnlyList<object>>();
    /// <summary>GQA layouts for token scorers: false = one kept set per KV head (the paper's +C), true = replicated per query head.</summary>
    public IReadOnlyList<bool> Replicated { get; init; } = [false];
    /// <summary>Storage of the KVs for methods that do not choose their own: null = full precision, else quantized.</summary>
    public IReadOnlyList<KvQuantization?> KvQuantization { get; init; } = [null];
    /// <summary>Context lengths (the fixed sets in data/eval exist for 1024, 2048, 4096).</summary>
    public IReadOnlyList<int> Contexts { get; init; } = [4096];
    public IReadOnlyList<LongContextTask> Tasks { get; init; } = TaskSuite.Scored.ToList();
    /// <summary>Examples per task (the first N of the fixed set, or of the seed base's examples).</summary>
    public int Examples { get; init; } = 5;
    /// <summary>Which examples: null = the fixed sets (data/eval); a seed base = examples generated from it
    /// (<see cref="EvalSet.HeldOutSeed"/> for the held-out ones), rows keyed apart from the fixed sets'.</summary>
    public int? SeedBase { get; init; }

    /// <summary>The rows' <c>example_set</c>.</summary>
    public string ExampleSet => SeedBase is { } s ? EvalRow.SeedSet(s) : EvalRow.FixedSet;
    /// <summary>Observation window k of the token scorers (scoring queries, always-kept KVs, patch length).</summary>
    public int ObsWindow { get; init; } = 64;
    /// <summary>Budget rule for rates: true (the default) = the accounting rule, round((1 − p)·c) + window per chunk;
    /// false = the paper code's int((1 − p)·c) (the code rule; curves labelled "/code").</summary>
    public bool AccountingRule { get; init; } = true;
    /// <summary>The curve name of every configuration (<see cref="MethodSpec.Curve"/>; null: each method's default).</summary>
    public string? Curve { get; init; }

    private static readonly string[] ScheduleNames = ["postfill", "naive", "patched"];

    /// <summary>
    /// The points in run order: method configuration (methods in the order given), then chunking, context, task.
    /// With <paramref name="config"/>, every configuration is built once for that model, so an impossible one (a group
    /// size that does not divide the head dimension, L2 patched) fails here, before anything runs. Throws
    /// <see cref="ArgumentException"/> with one line naming the problem.
    /// </summary>
    public SweepPlan Expand(LlamaConfig? config = null)
    {
        if (Methods.Count == 0) throw new ArgumentException("--methods: no methods");
        if (Examples < 1) throw new ArgumentException($"--examples must be ≥ 1 (got {Examples})");
        if (SeedBase is < 0) throw new ArgumentException($"--seed must be ≥ 0 (got {SeedBase})");
        if (Tasks.Count == 0) throw new ArgumentException("--tasks: no tasks");
        if (Contexts.Count == 0) throw new ArgumentException("--contexts: no context lengths");
        foreach (int c in Contexts)
            if (c < 128) throw new ArgumentException($"--contexts: {c} is below the shortest supported context (128)");
        foreach (var t in Tasks)
            foreach (int c in Contexts)
                if (c < t.MinLength) throw new ArgumentException($"--contexts: task {t.Name} needs at least {t.MinLength} tokens (got {c})");
        if (Chunks.Count == 0) throw new ArgumentException("--chunks: no chunk sizes");
        foreach (var s in Schedules)
            if (!ScheduleNames.Contains(s)) throw new ArgumentException($"--schedules: '{s}' is not one of {string.Join(", ", ScheduleNames)}");
        foreach (var (name, values) in Knobs)
        {
            var knob = Registry.Knobs.FirstOrDefault(k => k.Name == name) ?? throw new ArgumentException($"--{name}: no method has this setting");
            if (values.Count == 0) throw new ArgumentException($"--{name}: no values");
            foreach (var v in values) knob.Check(v);
        }

        var notes = new List<string>();
        var specs = new List<(MethodSpec Spec, Chunking[] Chunks)>();
        foreach (var item in Methods)
        {
            var parts = item.ToLowerInvariant().Split(':', StringSplitOptions.TrimEntries);
            if (parts.Length > 2 || parts[0].Length == 0) throw new ArgumentException($"--methods: '{item}' is not a method or method:schedule");
            var method = Registry.Find(parts[0]) ?? throw new ArgumentException($"--methods: unknown method '{parts[0]}'; choose from {string.Join(", ", Registry.Methods.Select(m => m.Name))}");
            bool scored = method.Kind == MethodKind.ScoresTokens;
            if (parts.Length == 2 && !scored) throw new ArgumentException($"--methods: '{item}': only the score-based methods ({Registry.NamesOf(MethodKind.ScoresTokens)}) take a schedule");
            if (parts.Length == 2 && !ScheduleNames.Contains(parts[1])) throw new ArgumentException($"--methods: '{item}': schedule '{parts[1]}' is not one of {string.Join(", ", ScheduleNames)}");
            var storages = method.Storage is not null ? [KvStorage.Default]
                : (scored ? Replicated : [false]).SelectMany(r => KvQuantization.Select(q => new KvStorage(r, q))).ToList();
            foreach (var knobs in KnobCombinations(method))
            {
                var spec = new MethodSpec(method, knobs) { Curve = Curve };
                if (!scored)
                {
                    foreach (var storage in storages) specs.Add((spec with { Storage = storage }, Chunks.ToArray()));
                    continue;
                }
                foreach (var (kind, chunks) in SchedulesFor(spec, parts.Length == 2 ? parts[1] : null, notes))
                    foreach (var storage in storages)
                        foreach (double p in Evicts)
                        {
                            var schedule = new EvictionSchedule
                            {
                                Kind = kind, Window = ObsWindow,
                                Budget = AccountingRule ? EvictionBudget.FractionPlusWindow(p) : EvictionBudget.Fraction(p),
                            };
                            schedule.Validate();
                            specs.Add((spec with { Schedule = schedule, Storage = storage }, chunks));
                        }
            }
        }

        var points = new List<SweepPoint>();
        var seen = new HashSet<string>();
        foreach (var (spec, chunks) in specs)
        {
            if (config is not null) spec.Create(config); // impossible settings fail now, not hours into the sweep
            else spec.Validate();
            foreach (var chunk in chunks)
                foreach (int context in Contexts)
                    foreach (var task in Tasks)
                    {
                        var point = new SweepPoint(spec, chunk, context, task) { ExampleSet = ExampleSet };
                        if (seen.Add(point.Key(""))) points.Add(point);
                    }
        }
        if (points.Count == 0) throw new ArgumentException("the grid is empty");
        return new SweepPlan(points, notes);
    }

    /// <summary>Every combination of the listed values of <paramref name="method"/>'s knobs (in the order it declares them).</summary>
    private IEnumerable<KnobValues> KnobCombinations(MethodDescriptor method)
    {
        IEnumerable<KnobValues> combos = [KvNotebooks.Eviction.KnobValues.Empty];
        foreach (var knob in method.Knobs)
            if (Knobs.TryGetValue(knob.Name, out var values))
                combos = combos.SelectMany(c => values.Select(v => c.With(knob, v))).ToList();
        return combos;
    }

    /// <summary>(schedule, chunkings it runs at) for one token scorer.</summary>
    private List<(ScheduleKind Kind, Chunking[] Chunks)> SchedulesFor(MethodSpec spec, string? fixedSchedule, List<string> notes)
    {
        string name = spec.Name;
        // A scorer that reads no queries cannot be changed by a patch (the prompt's last tokens appended as queries).
        bool queryFree = spec.Method.Scorer is { } make && make(spec).Queries == ScoreQueries.None;
        if (fixedSchedule is not null)
        {
            if (queryFree && fixedSchedule == "patched")
                throw new ArgumentException($"--methods: {name} scores without queries, so patching (appending the prompt's last tokens as queries) cannot change it; use {name}:naive");
            return [(Kind(fixedSchedule), Chunks.ToArray())];
        }
        if (Schedules.Count == 0)
        {
            // kvnb run's default: post-fill for a single pre-fill, naive when chunked.
            var result = new List<(ScheduleKind, Chunking[])>();
            var single = Chunks.Where(c => c.IsNone).ToArray();
            var chunked = Chunks.Where(c => !c.IsNone).ToArray();
            if (single.Length > 0) result.Add((ScheduleKind.PostFill, single));
            if (chunked.Length > 0) result.Add((ScheduleKind.Naive, chunked));
            return result;
        }
        var list = new List<(ScheduleKind, Chunking[])>();
        foreach (var s in Schedules)
        {
            if (queryFree && s == "patched")
            {
                notes.Add($"{name} × patched left out: {name} scores without queries, so patching cannot change it");
                continue;
            }
            list.Add((Kind(s), Chunks.ToArray()));
        }
        if (list.Count == 0) throw new ArgumentException($"--schedules: none of {string.Join(", ", Schedules)} applies to {name}");
        return list;
    }

    private static ScheduleKind Kind(string s) => s switch
    {
        "postfill" => ScheduleKind.PostFill,
        "naive" => ScheduleKind.Naive,
        _ => ScheduleKind.Patched,
    };
}
