using KvNotebooks.Eviction;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Evaluation;

/// <summary>One run of a sweep: a method configuration at one chunk size and context, on one task.</summary>
public sealed record SweepPoint(MethodSpec Spec, int Chunk, int Context, LongContextTask Task)
{
    /// <summary>The row's <c>method_config</c>.</summary>
    public string Config => Spec.Describe(Chunk);

    /// <summary>The <see cref="EvalRow.Key"/> this point's row has for <paramref name="model"/>.</summary>
    public string Key(string model) => EvalRow.MakeKey(model, Spec.Label, Config, Context, Chunk, Task.Name);
}

/// <summary>A grid expanded: its points in run order, and notes on combinations left out.</summary>
public sealed record SweepPlan(IReadOnlyList<SweepPoint> Points, IReadOnlyList<string> Notes)
{
    /// <summary>The distinct method configurations (one per <see cref="SweepPoint.Config"/>), in order.</summary>
    public IReadOnlyList<string> Configs => Points.Select(p => p.Config).Distinct().ToList();
}

/// <summary>
/// A sweep as plain data: methods × schedules × eviction rates × chunk sizes (× bits for quantized KV,
/// × windows for streaming heads, × GQA layouts) × contexts × tasks, with <see cref="Examples"/> examples
/// per task from the fixed sets. <see cref="Expand"/> turns it into points; every dimension applies only
/// to the methods it concerns (rates to score-based methods, bits to quantized KV, windows to streaming),
/// so one grid can hold the full-attention baseline beside every curve.
/// </summary>
public sealed record SweepGrid
{
    /// <summary>Method names (<see cref="MethodFactory.Names"/>); a score-based one may fix its schedule
    /// as "name:schedule" (e.g. "pyramidkv:patched"), otherwise it takes every one of <see cref="Schedules"/>.</summary>
    public IReadOnlyList<string> Methods { get; init; } = ["full"];
    /// <summary>Schedules for score-based methods named without one: postfill | naive | patched. Empty: post-fill
    /// for a single pre-fill, naive when chunked (as <c>kvnb run</c>). A method that cannot take one (L2 cannot be
    /// patched) skips it, with a note.</summary>
    public IReadOnlyList<string> Schedules { get; init; } = [];
    /// <summary>Fractions p of each chunk's KVs evicted (score-based methods).</summary>
    public IReadOnlyList<double> Evicts { get; init; } = [0.5];
    /// <summary>Pre-fill chunk sizes; 0 = a single pre-fill.</summary>
    public IReadOnlyList<int> Chunks { get; init; } = [0];
    /// <summary>Bits per code (quantized KV).</summary>
    public IReadOnlyList<int> Bits { get; init; } = [4];
    /// <summary>Local windows (streaming heads; the sink is <see cref="Settings"/>.Sink).</summary>
    public IReadOnlyList<int> Windows { get; init; } = [1024];
    /// <summary>GQA layouts for score-based methods: false = one kept set per KV head (the paper's +C), true = replicated per query head.</summary>
    public IReadOnlyList<bool> Replicated { get; init; } = [false];
    /// <summary>Context lengths (the fixed sets in data/eval exist for 1024, 2048, 4096).</summary>
    public IReadOnlyList<int> Contexts { get; init; } = [4096];
    public IReadOnlyList<LongContextTask> Tasks { get; init; } = TaskSuite.Scored.ToList();
    /// <summary>Examples per task (the first N of the fixed set).</summary>
    public int Examples { get; init; } = 5;
    /// <summary>The knobs that are not swept: sink, pool kernel, β, L2's skipped layers, ZigZag's thresholds, quantization group and residual.</summary>
    public MethodSettings Settings { get; init; } = new();
    /// <summary>Observation window k of the score-based methods (scoring queries, always-kept KVs, patch length).</summary>
    public int ObsWindow { get; init; } = 64;
    /// <summary>Budget rule for rates: false = the paper code's int((1 − p)·c), true = PAPER.md §1.2's round((1 − p)·c) + window.</summary>
    public bool AccountingRule { get; init; }

    private static readonly string[] ScheduleNames = ["postfill", "naive", "patched"];

    /// <summary>
    /// The points in run order: method configuration (methods in the order given), then chunk, context,
    /// task. With <paramref name="config"/>, every configuration is built once for that model, so an
    /// impossible one (a group size that does not divide the head dimension, L2 patched) fails here, before
    /// anything runs. Throws <see cref="ArgumentException"/> with one line naming the problem.
    /// </summary>
    public SweepPlan Expand(LlamaConfig? config = null)
    {
        if (Methods.Count == 0) throw new ArgumentException("--methods: no methods");
        if (Examples < 1) throw new ArgumentException($"--examples must be ≥ 1 (got {Examples})");
        if (Tasks.Count == 0) throw new ArgumentException("--tasks: no tasks");
        if (Contexts.Count == 0) throw new ArgumentException("--contexts: no context lengths");
        foreach (int c in Contexts)
            if (c < 128) throw new ArgumentException($"--contexts: {c} is below the shortest supported context (128)");
        foreach (var t in Tasks)
            foreach (int c in Contexts)
                if (c < t.MinLength) throw new ArgumentException($"--contexts: task {t.Name} needs at least {t.MinLength} tokens (got {c})");
        if (Chunks.Count == 0) throw new ArgumentException("--chunks: no chunk sizes");
        foreach (int c in Chunks)
            if (c < 0) throw new ArgumentException($"--chunks: {c} is not a chunk size (a positive number of tokens, or none for a single pre-fill)");
        foreach (var s in Schedules)
            if (!ScheduleNames.Contains(s)) throw new ArgumentException($"--schedules: '{s}' is not one of {string.Join(", ", ScheduleNames)}");

        var notes = new List<string>();
        var specs = new List<(MethodSpec Spec, int[] Chunks)>();
        foreach (var item in Methods)
        {
            var parts = item.ToLowerInvariant().Split(':', StringSplitOptions.TrimEntries);
            if (parts.Length > 2 || parts[0].Length == 0) throw new ArgumentException($"--methods: '{item}' is not a method or method:schedule");
            string name = new MethodSpec(parts[0], Settings).Canonical;
            if (!MethodFactory.Names.Contains(name)) throw new ArgumentException($"--methods: unknown method '{parts[0]}'; choose from {string.Join(", ", MethodFactory.Names)}");
            bool scored = MethodFactory.ScoredNames.Contains(name);
            if (parts.Length == 2 && !scored) throw new ArgumentException($"--methods: '{item}': only the score-based methods ({string.Join(", ", MethodFactory.ScoredNames)}) take a schedule");
            if (parts.Length == 2 && !ScheduleNames.Contains(parts[1])) throw new ArgumentException($"--methods: '{item}': schedule '{parts[1]}' is not one of {string.Join(", ", ScheduleNames)}");
            switch (name)
            {
                case "quantized":
                    foreach (int b in Bits) specs.Add((new MethodSpec(name, Settings with { Bits = b, Schedule = null }), Chunks.ToArray()));
                    break;
                case "streaming":
                    foreach (int w in Windows)
                    {
                        if (w < 0) throw new ArgumentException($"--windows: {w} is not a window size");
                        specs.Add((new MethodSpec(name, Settings with { Window = w, Schedule = null }), Chunks.ToArray()));
                    }
                    break;
                case var _ when scored:
                    bool explicitSchedule = parts.Length == 2;
                    foreach (var (kind, chunks) in SchedulesFor(name, explicitSchedule ? parts[1] : null, notes))
                        foreach (bool replicated in Replicated)
                            foreach (double p in Evicts)
                            {
                                var schedule = new EvictionSchedule
                                {
                                    Kind = kind, Window = ObsWindow,
                                    Budget = AccountingRule ? EvictionBudget.FractionPlusWindow(p) : EvictionBudget.Fraction(p),
                                };
                                schedule.Validate();
                                specs.Add((new MethodSpec(name, Settings with { Schedule = schedule, ReplicatePerQueryHead = replicated }), chunks));
                            }
                    break;
                default:
                    specs.Add((new MethodSpec(name, Settings with { Schedule = null }), Chunks.ToArray()));
                    break;
            }
        }

        var points = new List<SweepPoint>();
        var seen = new HashSet<string>();
        foreach (var (spec, chunks) in specs)
        {
            if (config is not null) spec.Create(config); // impossible settings fail now, not hours into the sweep
            foreach (int chunk in chunks)
                foreach (int context in Contexts)
                    foreach (var task in Tasks)
                    {
                        var point = new SweepPoint(spec, chunk, context, task);
                        if (seen.Add(point.Key(""))) points.Add(point);
                    }
        }
        if (points.Count == 0) throw new ArgumentException("the grid is empty");
        return new SweepPlan(points, notes);
    }

    /// <summary>(schedule, chunks it runs at) for one score-based method.</summary>
    private List<(ScheduleKind Kind, int[] Chunks)> SchedulesFor(string name, string? fixedSchedule, List<string> notes)
    {
        bool queryFree = name == "l2"; // scores from keys alone: patching cannot change it
        if (fixedSchedule is not null)
        {
            if (queryFree && fixedSchedule == "patched")
                throw new ArgumentException($"--methods: {name} scores without queries, so patching (appending the prompt's last tokens as queries) cannot change it; use {name}:naive");
            return [(Kind(fixedSchedule), Chunks.ToArray())];
        }
        if (Schedules.Count == 0)
        {
            // kvnb run's default: post-fill for a single pre-fill, naive when chunked.
            var result = new List<(ScheduleKind, int[])>();
            var single = Chunks.Where(c => c == 0).ToArray();
            var chunked = Chunks.Where(c => c > 0).ToArray();
            if (single.Length > 0) result.Add((ScheduleKind.PostFill, single));
            if (chunked.Length > 0) result.Add((ScheduleKind.Naive, chunked));
            return result;
        }
        var list = new List<(ScheduleKind, int[])>();
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
