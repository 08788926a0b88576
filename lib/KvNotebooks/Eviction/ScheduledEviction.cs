using KvNotebooks.Cache;
using KvNotebooks.Footprint;
using KvNotebooks.Kernels;

namespace KvNotebooks.Eviction;

/// <summary>
/// A score-based method run on a schedule: the <see cref="IKvScorer"/> says how KVs are scored and how a
/// budget splits over layers, the <see cref="EvictionSchedule"/> when eviction happens, which KVs are
/// candidates, and how many are kept. Per layer, right after its attention (as the paper's code does):
/// <list type="bullet">
/// <item>post-fill: at the last pre-fill chunk, every KV of the head is a candidate, scored by the
/// prompt's last <c>Window</c> queries;</item>
/// <item>naive: the chunk's own KVs are candidates, scored by the chunk's own last queries; earlier
/// KVs are never touched;</item>
/// <item>patched: the session appended the prompt's last <c>Window</c> tokens to the chunk; chunk + patch
/// are the candidates, the patch's queries score them, the patch is the always-kept window, and its KVs
/// are then dropped (<c>drop_last_k_tokens</c>), so only chunk KVs remain;</item>
/// <item>decode (optional): a head over its budget re-scores everything it holds with the last queries.</item>
/// </list>
/// Which entries are candidates, which are always kept and how many survive is the schedule's decision
/// (<see cref="EvictionSchedule.Compress"/>, the same one the accountant counts with). The last w candidates are
/// always kept; the rest keep the top-scoring ones (ties: the earlier one), in original order. Evicted entries
/// leave the cache and free its pages. GQA: one kept set per stored head — per KV head with scores averaged over
/// its query heads (the paper's "+C"), or, when the session stores one copy per query head
/// (<see cref="Cache.KvStorage.ReplicatePerQueryHead"/>), per query head as the original code.
/// </summary>
public sealed class ScheduledEviction : IEvictionMethod
{
    private QueryRing[] _rings = [];
    private int[][] _decodeCap = [];
    private float[][][] _scores = [];
    private int[][] _keep = [];
    private int[][] _order = [];
    private LayerPlan?[] _pending = [];
    private int[] _qpos = [];
    private int _numLayers, _numHeads;

    public ScheduledEviction(IKvScorer scorer, EvictionSchedule schedule)
    {
        schedule.Validate();
        if (schedule.Kind == ScheduleKind.Patched && scorer.Queries == ScoreQueries.None)
            throw new ArgumentException($"{scorer.Name} scores without queries, so patching (appending the prompt's last tokens as queries) cannot change it; use --schedule naive");
        Scorer = scorer;
        Schedule = schedule;
    }

    public IKvScorer Scorer { get; }
    public EvictionSchedule Schedule { get; }
    public string Name => Scorer.Name;
    public int ObservationWindow => Scorer.Queries switch
    {
        ScoreQueries.AllRows => int.MaxValue,
        ScoreQueries.Window => Schedule.Window,
        _ => 0,
    };
    public int PatchLength => Schedule.PatchLength;
    public ChunkPlan Plan(int promptTokens, Chunking chunking) => Schedule.Plan(promptTokens, chunking);
    public IEvictionMethod ForSession() => new ScheduledEviction(Scorer.ForSession(), Schedule);
    public bool EvictsAtEndOfStep => Scorer.NeedsAllLayers;

    private bool NeedRing => Scorer.Queries == ScoreQueries.Window && (Schedule.Kind == ScheduleKind.PostFill || Schedule.EvictDuringDecode);

    /// <summary>One layer's compression at this step, with its candidates at [From, From + Candidates).</summary>
    private readonly record struct LayerPlan(int From, Compression C)
    {
        public int Candidates => C.Candidates;
        public int Window => C.Window;
        public int Capacity => C.Capacity;
        public bool DropWindow => C.DropWindow;
        public int NonWindow => C.Scored;
    }

    /// <summary>Query rows [Offset / QDim …) of Data, with their positions.</summary>
    private readonly record struct QuerySet(float[] Data, int Offset, int Rows, int[] Positions);

    public void Evict(in LayerStep ctx)
    {
        var step = ctx.Step;
        if (_numLayers == 0 || (step.Phase == Phase.Prefill && step.Index == 0 && ctx.Layer == 0)) Begin(ctx);
        int l = ctx.Layer;
        var cache = ctx.Cache;
        Scorer.ObserveStep(ctx);
        bool decode = step.Phase == Phase.Decode;
        if (decode && !Schedule.EvictDuringDecode) return;
        if (Scorer.Queries == ScoreQueries.AllRows) Observe(ctx);
        if (NeedRing && step.PatchLength == 0 && ctx.Queries is not null) _rings[l].Push(ctx);
        if (decode)
        {
            EvictWhileDecoding(ctx);
            return;
        }
        int count = cache.Count(l, 0);   // every head of a layer holds as many entries (all over every storage)
        if (Schedule.Compress(step, count) is not { } c) return;
        var plan = new LayerPlan(count - c.Candidates, c);
        var queries = PrefillQueries(ctx, l, c.Window);
        if (Scorer.NeedsAllLayers)
        {
            ScoreHeads(ctx, plan, queries);
            _pending[l] = plan;
            return;
        }
        Span<int> budgets = stackalloc int[_numLayers];
        Budgets(plan, budgets);
        if (budgets[l] > 0 && budgets[l] < plan.NonWindow) ScoreHeads(ctx, plan, queries);
        KeepLayer(cache, l, plan, budgets[l]);
    }

    public void EndStep(GenerationStep step, KvCache cache)
    {
        if (step.Phase != Phase.Prefill || _numLayers == 0) return;
        if (Array.Exists(_pending, p => p is not null))
        {
            var first = Array.Find(_pending, p => p is not null)!.Value;
            Span<int> budgets = stackalloc int[_numLayers];
            Budgets(first, budgets);
            for (int l = 0; l < _numLayers; l++)
                if (_pending[l] is { } plan) KeepLayer(cache, l, plan, budgets[l]);
            Array.Clear(_pending);
        }
        if (step.IsFinalChunk)
            for (int l = 0; l < _numLayers; l++)
                for (int h = 0; h < _numHeads; h++) _decodeCap[l][h] = cache.Count(l, h);
    }

    private void Begin(in LayerStep ctx)
    {
        _numLayers = ctx.Cache.NumLayers;
        _numHeads = ctx.Cache.NumKvHeads;
        int qDim = ctx.Config.QDim;
        _rings = Enumerable.Range(0, _numLayers).Select(_ => new QueryRing(Schedule.Window, qDim)).ToArray();
        _decodeCap = Enumerable.Range(0, _numLayers).Select(_ => new int[_numHeads]).ToArray();
        _scores = Enumerable.Range(0, _numLayers).Select(_ => Enumerable.Range(0, _numHeads).Select(_ => Array.Empty<float>()).ToArray()).ToArray();
        _keep = Enumerable.Range(0, _numHeads).Select(_ => Array.Empty<int>()).ToArray();
        _order = Enumerable.Range(0, _numHeads).Select(_ => Array.Empty<int>()).ToArray();
        _pending = new LayerPlan?[_numLayers];
        Scorer.Begin(_numLayers, _numHeads);
    }

    /// <summary>Scored entries each layer keeps: all if the capacity reaches the candidates, else the scorer's split of
    /// capacity − window (none, window only, when the capacity does not exceed the window — except in layers a scorer
    /// never prunes, such as L2's skipped first layers).</summary>
    private void Budgets(LayerPlan plan, Span<int> budgets)
    {
        if (plan.Capacity >= plan.Candidates) budgets.Fill(plan.NonWindow);
        else Scorer.LayerBudgets(new BudgetInput(plan.Capacity, plan.Candidates, plan.Window, _numLayers), budgets);
    }

    private QuerySet PrefillQueries(in LayerStep ctx, int layer, int w)
    {
        if (Scorer.Queries != ScoreQueries.Window) return new QuerySet([], 0, 0, []);
        if (Schedule.Kind == ScheduleKind.PostFill) return _rings[layer].AsQuerySet();
        int rows = Math.Min(w, ctx.QueryRows), skip = ctx.QueryRows - rows;
        if (_qpos.Length < rows) _qpos = new int[rows];
        for (int j = 0; j < rows; j++) _qpos[j] = ctx.QueryPosition(skip + j);
        return new QuerySet(ctx.Queries!, skip * ctx.Config.QDim, rows, _qpos);
    }

    /// <summary>Each head's entries from <paramref name="from"/> on as full-precision views (the heads themselves unless
    /// those entries are codes), with the index offset of each view; taken one head after another.</summary>
    private (KvHeadCache View, int Offset)[] Views(KvCache cache, int l, int from)
    {
        var views = new (KvHeadCache, int)[cache.NumKvHeads];
        for (int h = 0; h < views.Length; h++) views[h] = (cache.View(l, h, from, out int offset), offset);
        return views;
    }

    private void ScoreHeads(in LayerStep ctx, LayerPlan plan, QuerySet q)
    {
        int l = ctx.Layer, H = ctx.Cache.NumKvHeads;
        int n = plan.NonWindow, qph = ctx.Config.NumHeads / H, qDim = ctx.Config.QDim;
        float scale = 1f / MathF.Sqrt(ctx.Config.HeadDim);
        for (int h = 0; h < H; h++)
            if (_scores[l][h].Length < n) _scores[l][h] = new float[Math.Max(n, 2 * _scores[l][h].Length)];
        var views = Views(ctx.Cache, l, plan.From);
        double work = (double)H * (plan.Candidates) * Math.Max(q.Rows, 1) * qph * ctx.Config.HeadDim;
        ComputeContext.Current.For(H, work > 1 << 20, h =>
        {
            var (view, o) = views[h];
            var input = new ScoreInput
            {
                Layer = l, Head = h, Cache = view, From = plan.From - o, To = plan.From - o + n, End = plan.From - o + plan.Candidates, IndexOffset = o,
                Queries = q.Data.AsSpan(q.Offset, q.Rows * qDim), QueryPositions = q.Positions.AsSpan(0, q.Rows),
                QDim = qDim, FirstQueryHead = h * qph, QueryHeads = qph, Scale = scale,
            };
            Scorer.Score(input, _scores[l][h].AsSpan(0, n));
        });
    }

    private void Observe(in LayerStep ctx)
    {
        int H = ctx.Cache.NumKvHeads, rows = ctx.QueryRows, qph = ctx.Config.NumHeads / H, qDim = ctx.Config.QDim;
        if (_qpos.Length < rows) _qpos = new int[rows];
        for (int j = 0; j < rows; j++) _qpos[j] = ctx.QueryPosition(j);
        var q = ctx.Queries!;
        var pos = _qpos;
        float scale = 1f / MathF.Sqrt(ctx.Config.HeadDim);
        int l = ctx.Layer;
        var views = Views(ctx.Cache, l, 0);
        double work = (double)H * views[0].View.Count * rows * qph * ctx.Config.HeadDim;
        ComputeContext.Current.For(H, work > 1 << 20, h =>
        {
            // H2O observes every entry: a view starts at the head's first (when some are codes, a dequantized copy).
            var (view, o) = views[h];
            int count = view.Count;
            if (o != 0) throw new InvalidOperationException("a view from entry 0 has no offset");
            var input = new ScoreInput
            {
                Layer = l, Head = h, Cache = view, From = 0, To = count, End = count,
                Queries = q.AsSpan(0, rows * qDim), QueryPositions = pos.AsSpan(0, rows),
                QDim = qDim, FirstQueryHead = h * qph, QueryHeads = qph, Scale = scale,
            };
            Scorer.Observe(input);
        });
    }

    private void EvictWhileDecoding(in LayerStep ctx)
    {
        int l = ctx.Layer, H = ctx.Cache.NumKvHeads;
        for (int h = 0; h < H; h++)
        {
            int budget = Schedule.DecodeBudget > 0 ? Schedule.DecodeBudget : _decodeCap[l][h];
            int count = ctx.Cache.Count(l, h);
            if (Schedule.CompressWhileDecoding(count, budget) is not { } c) continue;
            var plan = new LayerPlan(0, c);
            int keep = plan.Capacity - plan.Window;
            if (keep > 0)
            {
                if (_scores[l][h].Length < plan.NonWindow) _scores[l][h] = new float[Math.Max(plan.NonWindow, 2 * _scores[l][h].Length)];
                var q = Scorer.Queries == ScoreQueries.Window ? _rings[l].AsQuerySet() : new QuerySet([], 0, 0, []);
                int qph = ctx.Config.NumHeads / H;
                var view = ctx.Cache.View(l, h, 0, out _);
                var input = new ScoreInput
                {
                    Layer = l, Head = h, Cache = view, From = 0, To = plan.NonWindow, End = count,
                    Queries = q.Data.AsSpan(q.Offset, q.Rows * ctx.Config.QDim), QueryPositions = q.Positions.AsSpan(0, q.Rows),
                    QDim = ctx.Config.QDim, FirstQueryHead = h * qph, QueryHeads = qph, Scale = 1f / MathF.Sqrt(ctx.Config.HeadDim),
                };
                Scorer.Score(input, _scores[l][h].AsSpan(0, plan.NonWindow));
            }
            KeepHead(ctx.Cache, l, h, plan, keep);
        }
    }

    private void KeepLayer(KvCache cache, int l, LayerPlan plan, int keepScored)
    {
        bool parallel = (double)cache.NumKvHeads * plan.Candidates > 1 << 14;
        ComputeContext.Current.For(cache.NumKvHeads, parallel, h => KeepHead(cache, l, h, plan, keepScored));
    }

    /// <summary>Keeps entries [0, From), the top <paramref name="keepScored"/> scored candidates and the
    /// window (unless it is the patch), in order; the scorer hears which entries survived.</summary>
    private void KeepHead(KvCache cache, int l, int h, LayerPlan plan, int keepScored)
    {
        int count = cache.Count(l, h), n = plan.NonWindow;
        keepScored = Math.Clamp(keepScored, 0, n);
        if (_keep[h].Length < count) _keep[h] = new int[Math.Max(count, 2 * _keep[h].Length)];
        var keep = _keep[h];
        int k = 0;
        for (int i = 0; i < plan.From; i++) keep[k++] = i;
        if (keepScored == n)
            for (int i = 0; i < n; i++) keep[k++] = plan.From + i;
        else if (keepScored > 0)
        {
            if (_order[h].Length < n) _order[h] = new int[Math.Max(n, 2 * _order[h].Length)];
            var order = _order[h].AsSpan(0, n);
            for (int i = 0; i < n; i++) order[i] = i;
            order.Sort(new ByScoreDescending(_scores[l][h]));
            var top = order[..keepScored];
            top.Sort();
            foreach (int i in top) keep[k++] = plan.From + i;
        }
        if (!plan.DropWindow)
            for (int i = plan.From + n; i < plan.From + plan.Candidates; i++) keep[k++] = i;
        if (k == count) return;
        cache.Keep(l, h, keep.AsSpan(0, k));
        Scorer.OnKept(l, h, keep.AsSpan(0, k));
    }

    private readonly struct ByScoreDescending(float[] scores) : IComparer<int>
    {
        public int Compare(int a, int b)
        {
            int c = scores[b].CompareTo(scores[a]);
            return c != 0 ? c : a.CompareTo(b);
        }
    }

    /// <summary>The last <c>capacity</c> query rows of a layer (sequence rows only, never patch rows),
    /// oldest first, with their positions: the observation window across steps.</summary>
    private sealed class QueryRing(int capacity, int qDim)
    {
        private readonly float[] _data = new float[capacity * qDim];
        private readonly int[] _positions = new int[capacity];
        private int _count;

        public void Push(in LayerStep ctx)
        {
            int rows = Math.Min(ctx.QueryRows, capacity), skip = ctx.QueryRows - rows;
            int keepOld = Math.Min(_count, capacity - rows), drop = _count - keepOld;
            if (drop > 0)
            {
                Array.Copy(_data, drop * qDim, _data, 0, keepOld * qDim);
                Array.Copy(_positions, drop, _positions, 0, keepOld);
            }
            Array.Copy(ctx.Queries!, skip * qDim, _data, keepOld * qDim, rows * qDim);
            for (int j = 0; j < rows; j++) _positions[keepOld + j] = ctx.QueryPosition(skip + j);
            _count = keepOld + rows;
        }

        public QuerySet AsQuerySet() => new(_data, 0, _count, _positions);
    }
}
