using KvNotebooks.Footprint;
using KvNotebooks.HeadMasks;

namespace KvNotebooks.Eviction;

/// <summary>
/// Locret (Huang et al. 2024): retaining heads — a small network per layer on each token's q, k and v — predict one
/// importance score per KV head when the token is pre-filled; each chunk then keeps the best of its own KVs by that
/// score plus its last tokens (the stabilizers), and the prompt's last tokens are pre-filled as a chunk of their own.
/// Run as a token scorer on its own schedule: chunked naive, the accounting budget rule round((1 − p)·c) + stabilizers,
/// the stabilizers as the always-kept window, the local tail as a last chunk — so the accountant's formula
/// P_k = P_{k−1} + min(round((1 − p)·c_k) + stabilizers, c_k) is what the engine does (docs/methods.md).
/// </summary>
public sealed class Locret : IKvScorer
{
    public static readonly Knob<int> StabilizersKnob = new("stabilizers", "stabilizers", 2500, "locret: last tokens of each chunk always kept",
        n => n >= 1 ? null : "must be ≥ 1");
    public static readonly Knob<int> LocalLenKnob = new("local-len", "local-len", 100, "locret: last prompt tokens pre-filled as a chunk of their own",
        n => n >= 0 ? null : "must be ≥ 0");
    public static readonly Knob<string> HeadsKnob = new("heads", "heads", null, "locret: trained retaining heads (safetensors, kvnb masks train)",
        format: Path.GetFileName);

    public static MethodDescriptor Descriptor { get; } = MethodDescriptor.TokenScorer("locret",
        "Locret: trained retaining heads score each KV from its q, k, v; each chunk keeps its best plus stabilizers",
        [HeadsKnob, StabilizersKnob, LocalLenKnob], s => new Locret(RetainingHeads.Load(s.Get(HeadsKnob)))) with
    {
        OwnSchedule = (s, given) => given with
        {
            Kind = ScheduleKind.Naive,
            Window = s.Get(StabilizersKnob),
            LocalTail = s.Get(LocalLenKnob),
            Budget = given.Budget.Kind == BudgetKind.Evict ? EvictionBudget.FractionPlusWindow(given.Budget.Evict) : given.Budget,
        },
    };

    private readonly RetainingHeads _heads;
    private float[][][] _predicted = [];   // [layer][KV head][entry]: predicted importance of what each head holds
    private int[][] _count = [];
    private float[] _k = [], _v = [], _scores = [];

    public Locret(RetainingHeads heads) => _heads = heads;

    public string Name => "locret";
    /// <summary>Every row's query is read (to score the row's own KV when it arrives).</summary>
    public ScoreQueries Queries => ScoreQueries.AllRows;
    public IKvScorer ForSession() => new Locret(_heads);

    public void Begin(int numLayers, int numHeads)
    {
        if (numLayers != _heads.NumLayers || numHeads != _heads.NumKvHeads)
            throw new ArgumentException($"the retaining heads are for {_heads.NumLayers} layers × {_heads.NumKvHeads} KV heads, the cache has {numLayers} × {numHeads} (locret needs one copy per KV head: --gqa shared)");
        _predicted = Enumerable.Range(0, numLayers).Select(_ => Enumerable.Range(0, numHeads).Select(_ => new float[64]).ToArray()).ToArray();
        _count = Enumerable.Range(0, numLayers).Select(_ => new int[numHeads]).ToArray();
    }

    /// <summary>Scores the step's new rows (the last entries of every head) from their q, k and v.</summary>
    public void ObserveStep(in LayerStep step)
    {
        if (_predicted.Length == 0) Begin(step.Cache.NumLayers, step.Cache.NumKvHeads);
        int l = step.Layer, H = step.Cache.NumKvHeads, hd = step.Cache.HeadDim, rows = step.Step.Rows;
        if (step.QueryRows != rows || step.Queries is null) throw new InvalidOperationException("locret needs every row's query");
        int kvDim = H * hd;
        if (_k.Length < rows * kvDim) { _k = new float[rows * kvDim]; _v = new float[rows * kvDim]; }
        if (_scores.Length < rows * H) _scores = new float[rows * H];
        for (int h = 0; h < H; h++)
        {
            int count = step.Cache.Count(l, h);
            var view = step.Cache.View(l, h, count - rows, out int offset);
            for (int r = 0; r < rows; r++)
            {
                int i = count - rows + r - offset;
                view.Key(i).CopyTo(_k.AsSpan(r * kvDim + h * hd, hd));
                view.Value(i).CopyTo(_v.AsSpan(r * kvDim + h * hd, hd));
            }
        }
        _heads.Score(l, step.Queries.AsSpan(0, rows * step.Config.QDim), _k, _v, rows, _scores);
        for (int h = 0; h < H; h++)
        {
            int held = _count[l][h];
            if (held != step.Cache.Count(l, h) - rows)
                throw new InvalidOperationException($"locret tracks {held} entries of layer {l} head {h}, the cache holds {step.Cache.Count(l, h) - rows} before this step");
            ref var p = ref _predicted[l][h];
            if (p.Length < held + rows) Array.Resize(ref p, Math.Max(held + rows, 2 * p.Length));
            for (int r = 0; r < rows; r++) p[held + r] = _scores[r * H + h];
            _count[l][h] = held + rows;
        }
    }

    public void Score(in ScoreInput input, Span<float> scores) =>
        _predicted[input.Layer][input.Head].AsSpan(input.From + input.IndexOffset, input.To - input.From).CopyTo(scores);

    public void OnKept(int layer, int head, ReadOnlySpan<int> kept)
    {
        var p = _predicted[layer][head];
        for (int j = 0; j < kept.Length; j++) p[j] = p[kept[j]];
        _count[layer][head] = kept.Length;
    }
}
