using System.Globalization;
using KvNotebooks.Eviction;
using KvNotebooks.Model;

namespace KvNotebooks.Evaluation;

/// <summary>
/// A KV method as plain data: its name and every knob (<see cref="MethodSettings"/>). It builds the
/// method (<see cref="Create"/>), names its curve (<see cref="Label"/>: what varies along a curve, the
/// eviction rate, bits or window, is left out) and writes its full configuration as one canonical line
/// (<see cref="Describe"/>), which is what a result row's <c>method_config</c> holds and what a resumed
/// sweep matches on. Only the knobs that apply to the method appear, so the line stays readable.
/// </summary>
public sealed record MethodSpec(string Name, MethodSettings Settings)
{
    /// <summary>Full attention: nothing evicted.</summary>
    public static MethodSpec Full { get; } = new("full", new MethodSettings());

    /// <summary>The lower-case method name with aliases resolved (duo/prulong → headmask, kivi → quantized, zigzagkv → zigzag).</summary>
    public string Canonical => Name.ToLowerInvariant() switch
    {
        "duo" or "prulong" => "headmask",
        "kivi" => "quantized",
        "zigzagkv" => "zigzag",
        var n => n,
    };

    /// <summary>Whether the method scores KVs and runs on a schedule (SnapKV, PyramidKV, H2O, L2, ZigZagKV).</summary>
    public bool IsScored => MethodFactory.ScoredNames.Contains(Canonical);

    /// <summary>The schedule of a score-based method (post-fill, evict 0.5 when none was given, as <see cref="MethodFactory"/> does).</summary>
    public EvictionSchedule? Schedule => IsScored ? Settings.Schedule ?? EvictionSchedule.PostFill(EvictionBudget.Fraction(0.5)) : null;

    /// <summary>Builds the method for a model (throws <see cref="ArgumentException"/> on impossible settings).</summary>
    public IEvictionMethod Create(LlamaConfig config) => MethodFactory.Create(Canonical, config, Settings);

    /// <summary>
    /// The curve this configuration belongs to: "full", "streaming", "quantized", "headmask", or for a
    /// score-based method "name/schedule" (e.g. "pyramidkv/patched"), with "/replicated" (GQA copies per
    /// query head), "/accounting" (the §1.2 budget rule), "/budget" (absolute budgets) and "/decode-evict" when set.
    /// </summary>
    public string Label
    {
        get
        {
            if (!IsScored) return Canonical;
            var s = Schedule!;
            string label = $"{Canonical}/{s.Kind.ToString().ToLowerInvariant()}";
            if (Settings.ReplicatePerQueryHead) label += "/replicated";
            if (s.Budget.Kind == BudgetKind.EvictPlusWindow) label += "/accounting";
            if (s.Budget.Kind == BudgetKind.Tokens) label += "/budget";
            if (s.EvictDuringDecode) label += "/decode-evict";
            return label;
        }
    }

    /// <summary>
    /// The canonical configuration line, e.g.
    /// <c>pyramidkv;schedule=patched;evict=0.7;obs=64;pool=5;beta=20;gqa=shared;chunk=1024</c>
    /// (chunk "none" for a single pre-fill, <paramref name="chunk"/> ≤ 0 or int.MaxValue).
    /// </summary>
    public string Describe(int chunk)
    {
        var parts = new List<string> { Canonical };
        var s = Settings;
        switch (Canonical)
        {
            case "full":
                break;
            case "streaming":
                parts.Add($"sink={I(s.Sink)}");
                parts.Add($"window={I(s.Window)}");
                break;
            case "headmask":
                parts.Add($"masks={Path.GetFileName(s.MasksPath ?? "")}");
                parts.Add($"sink={I(s.Sink)}");
                parts.Add($"window={I(s.Window)}");
                break;
            case "quantized":
                parts.Add($"bits={I(s.Bits)}");
                parts.Add($"group={I(s.GroupSize)}");
                parts.Add($"residual={I(s.Residual)}");
                break;
            default:
                var sc = Schedule!;
                parts.Add($"schedule={sc.Kind.ToString().ToLowerInvariant()}");
                parts.Add(sc.Budget.Kind switch
                {
                    BudgetKind.Tokens => $"budget={I(sc.Budget.Tokens)}",
                    BudgetKind.EvictPlusWindow => $"evict={D(sc.Budget.Evict)};rule=accounting",
                    _ => $"evict={D(sc.Budget.Evict)}",
                });
                parts.Add($"obs={I(sc.Window)}");
                if (sc.Kind == ScheduleKind.PostFill && sc.CapacityMultiple != 64) parts.Add($"capacity-multiple={I(sc.CapacityMultiple)}");
                switch (Canonical)
                {
                    case "snapkv": parts.Add($"pool={I(s.PoolKernel)}"); break;
                    case "pyramidkv": parts.Add($"pool={I(s.PoolKernel)}"); parts.Add($"beta={I(s.Beta)}"); break;
                    case "l2": parts.Add($"skip-layers={I(s.SkipLayers)}"); break;
                    case "zigzag": parts.Add($"lmba={D(s.LmbaThreshold)}"); parts.Add($"min-budget={D(s.MinBudgetFraction)}"); break;
                }
                parts.Add(s.ReplicatePerQueryHead ? "gqa=replicated" : "gqa=shared");
                if (sc.EvictDuringDecode)
                {
                    parts.Add("decode-evict");
                    if (sc.DecodeBudget > 0) parts.Add($"decode-budget={I(sc.DecodeBudget)}");
                    if (sc.DecodeInterval != 1) parts.Add($"decode-interval={I(sc.DecodeInterval)}");
                }
                break;
        }
        parts.Add($"chunk={ChunkText(chunk)}");
        return string.Join(';', parts);
    }

    /// <summary>The swept value that places this configuration on its curve, for tables and hover text:
    /// "p=0.7", "budget=512", "4-bit", "window=256", or "" for full attention.</summary>
    public string Point => Canonical switch
    {
        "quantized" => $"{I(Settings.Bits)}-bit",
        "streaming" or "headmask" => $"window={I(Settings.Window)}",
        _ when IsScored => Schedule!.Budget.Kind == BudgetKind.Tokens ? $"budget={I(Schedule.Budget.Tokens)}" : $"p={D(Schedule.Budget.Evict)}",
        _ => "",
    };

    /// <summary>"none" for a single pre-fill (≤ 0 or int.MaxValue), else the chunk size.</summary>
    public static string ChunkText(int chunk) => chunk <= 0 || chunk == int.MaxValue ? "none" : I(chunk);

    private static string I(int x) => x.ToString(CultureInfo.InvariantCulture);
    private static string D(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A fresh session factory for the evaluator: name = <see cref="Label"/>, config = <see cref="Describe"/>.</summary>
    public EvalMethod ToEvalMethod(int chunk) =>
        new(Label, Describe(chunk), m => new Inference.Session(m, Create(m.Config), chunk <= 0 ? int.MaxValue : chunk));
}
