using System.Numerics.Tensors;
using KvNotebooks.Cache;
using KvNotebooks.Kernels;

namespace KvNotebooks.Model;

/// <summary>Called after each layer's attention over the rows of a forward pass, before the
/// output projection: the session measures the footprint and runs eviction here.</summary>
public interface ILayerObserver
{
    /// <param name="layer">Layer index.</param>
    /// <param name="rows">Query rows of this forward pass.</param>
    /// <param name="queries">Post-RoPE queries of this layer, [rows × QDim].</param>
    void AfterAttention(int layer, int rows, float[] queries);
}

/// <summary>Which rows of a forward pass need logits.</summary>
public enum LogitRows { None, Last, All }

/// <summary>
/// The Llama forward pass over a block of tokens (a pre-fill chunk, or one decode token) with a
/// <see cref="KvCache"/>. Per layer: RMSNorm → fused QKV GEMM (+bias) → RoPE at original positions →
/// append K,V to the cache → attention over what the cache keeps → observer (meter, eviction) →
/// O GEMM into the residual → RMSNorm → fused gate/up GEMM → SwiGLU → down GEMM into the residual.
/// <para>Everything but attention is row-local, so it runs in tiles of <see cref="RowTile"/> rows, each tile
/// through all its ops on one thread (<see cref="AttentionInputs"/>: RMSNorm → QKV → RoPE → Q rows out, K and V
/// into their cache slots; <see cref="OutputAndMlp"/>: O → RMSNorm → gate/up → SwiGLU → down): a tile's
/// intermediates stay in that core's L2, and a layer costs three thread hand-offs (the two tile phases and
/// attention). Weights are packed once for the inference GEMM (<see cref="PackedWeight"/>): a second copy of
/// the layer weights (the unpacked fused QKV and gate/up copies it replaces were two thirds of one).
/// All activations live in buffers reused across calls.</para>
/// </summary>
public sealed class LlamaModel
{
    /// <summary>Rows per tile: a multiple of the GEMM micro-kernel's 6 rows, small enough for a tile's
    /// activations (QKV, gate/up) to stay in L2.</summary>
    internal const int RowTile = 96;

    private readonly LlamaWeights _w;
    private readonly Rope _rope;
    private readonly PackedWeight[] _wqkv;  // per layer [(QDim + 2·KvDim) × d]
    private readonly float[]?[] _bqkv;      // per layer [QDim + 2·KvDim] or null
    private readonly PackedWeight[] _wo;    // per layer [d × QDim]
    private readonly PackedWeight[] _wgu;   // per layer [2·ff × d]: gate rows then up rows
    private readonly PackedWeight[] _wdown; // per layer [d × ff]
    private readonly PackedWeight? _lmHead; // [V × d], when small enough to be worth a second copy
    private readonly float _scale;
    private int _capacity;
    private float[] _x = [], _q = [], _attn = [], _xn = [];
    private int[] _positions = [];
    private TileScratch[] _scratch = [];

    /// <param name="weights">The model's weights (packed once here for the inference GEMM).</param>
    /// <param name="compute">Threads, kernel paths and page cache this model runs with (default: every core, its own pages).</param>
    public LlamaModel(LlamaWeights weights, ComputeContext? compute = null)
    {
        _w = weights;
        Compute = compute ?? new ComputeContext();
        using var scope = Compute.Enter();   // the weights are packed for the kernel paths this context takes
        var c = weights.Config;
        c.Validate();
        Config = c;
        _rope = new Rope(c);
        _scale = 1f / MathF.Sqrt(c.HeadDim);
        int L = c.NumLayers, d = c.HiddenSize, ff = c.IntermediateSize;
        _wqkv = new PackedWeight[L];
        _bqkv = new float[L][];
        _wo = new PackedWeight[L];
        _wgu = new PackedWeight[L];
        _wdown = new PackedWeight[L];
        for (int l = 0; l < L; l++)
        {
            var lw = weights.Layers[l];
            _wqkv[l] = new PackedWeight([.. lw.Wq, .. lw.Wk, .. lw.Wv], c.QDim + 2 * c.KvDim, d);
            if (c.AttentionBias)
                _bqkv[l] = [.. lw.Bq ?? new float[c.QDim], .. lw.Bk ?? new float[c.KvDim], .. lw.Bv ?? new float[c.KvDim]];
            _wo[l] = new PackedWeight(lw.Wo, d, c.QDim);
            _wgu[l] = new PackedWeight([.. lw.WGate, .. lw.WUp], 2 * ff, d);
            _wdown[l] = new PackedWeight(lw.WDown, d, ff);
        }
        // a decode step's logits are one GEMV over the LM head; a large vocabulary keeps its single copy
        if ((long)c.VocabSize * d <= 1 << 24) _lmHead = new PackedWeight(weights.LmHead, c.VocabSize, d);
    }

    public LlamaConfig Config { get; }
    public LlamaWeights Weights => _w;
    /// <summary>What this model runs with: every <see cref="Forward"/> runs under it, and its caches recycle its pages.</summary>
    public ComputeContext Compute { get; }
    /// <summary>When set (benchmarks only), each op of <see cref="Forward"/> charges its time here (per op
    /// only on one thread; on more, the row-tile phases are charged as a whole).</summary>
    internal Bench.StepTimer? Timer { get; set; }

    /// <summary>A cache shaped for this model: one stored head per KV head, or per query head when
    /// <paramref name="storage"/> replicates; quantized when it says so.</summary>
    public KvCache NewCache(int pageSize = 64, KvStorage? storage = null)
    {
        storage ??= KvStorage.Default;
        int heads = storage.ReplicatePerQueryHead ? Config.NumHeads : Config.NumKvHeads;
        return new(Config.NumLayers, heads, Config.HeadDim, pageSize, storage.Quantization, Compute.Pages);
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> (at <paramref name="positions"/>) through the model, appending
    /// their keys and values to <paramref name="cache"/>. Writes logits for the requested rows into
    /// <paramref name="logits"/>: [1 × V] for <see cref="LogitRows.Last"/>, [rows × V] for All.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, KvCache cache,
                        LogitRows logitRows = LogitRows.Last, Span<float> logits = default, ILayerObserver? observer = null)
    {
        var c = Config;
        int rows = tokens.Length, d = c.HiddenSize, V = c.VocabSize;
        if (rows == 0) throw new ArgumentException("Forward needs at least one token");
        if (positions.Length != rows) throw new ArgumentException($"{rows} tokens but {positions.Length} positions");
        if (cache.NumLayers != c.NumLayers || cache.HeadDim != c.HeadDim
            || cache.NumKvHeads % c.NumKvHeads != 0 || c.NumHeads % cache.NumKvHeads != 0)
            throw new ArgumentException("the cache was made for a different model shape");
        int needLogits = logitRows switch { LogitRows.All => rows, LogitRows.Last => 1, _ => 0 };
        if (logits.Length < needLogits * V)
            throw new ArgumentException($"logits buffer holds {logits.Length} values, {needLogits * V} needed");
        for (int i = 0; i < rows; i++)
        {
            if ((uint)tokens[i] >= (uint)V)
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"token {i} has id {tokens[i]}, outside the vocabulary [0, {V})");
            if (positions[i] < 0) throw new ArgumentOutOfRangeException(nameof(positions), positions[i], "positions must be ≥ 0");
        }
        using var scope = Compute.Enter();
        EnsureCapacity(rows);
        positions.CopyTo(_positions);
        int maxPosition = 0;
        foreach (int p in positions) maxPosition = Math.Max(maxPosition, p);
        _rope.Table(maxPosition + 1);
        var timer = Timer;
        timer?.Start();

        var x = _x.AsSpan(0, rows * d);
        for (int i = 0; i < rows; i++) _w.Embedding.AsSpan(tokens[i] * d, d).CopyTo(x.Slice(i * d, d));
        timer?.Mark("embedding");

        for (int l = 0; l < c.NumLayers; l++)
        {
            // The rows' entries join every stored head now (positions recorded); the tiles write their keys and values.
            var heads = cache.Layer(l);
            foreach (var h in heads) h.AppendPending(positions);
            int layer = l;
            Tiles(rows, (scratch, r0, r1, t) => AttentionInputs(layer, heads, rows, scratch, r0, r1, t), timer, "rmsnorm + qkv + rope + append");

            cache.Attend(l, _q, rows, c.NumHeads, _scale, _attn);
            timer?.Mark("attention");
            observer?.AfterAttention(l, rows, _q);
            timer?.Mark("observer");

            Tiles(rows, (scratch, r0, r1, t) => OutputAndMlp(layer, scratch, r0, r1, t), timer, "o + rmsnorm + mlp");
        }

        if (needLogits == 0) return;
        int first = rows - needLogits;
        var xl = x.Slice(first * d, needLogits * d);
        var xnl = _xn.AsSpan(0, needLogits * d);
        RmsNorm.Forward(xl, _w.FinalNorm, xnl, needLogits, (float)c.RmsNormEps);
        if (needLogits == 1 && _lmHead is { } head) head.Multiply(xnl, d, 1, logits, V);   // a decode step or a pre-fill's last row
        else Gemm.MatMulNT(xnl, _w.LmHead, logits, needLogits, V, d);    // every row: split over the threads
        timer?.Mark("final norm + lm head");
    }

    /// <summary>Rows [r0, r1) of one layer's attention inputs: RMSNorm → QKV (+bias) → RoPE; Q rows into the
    /// shared Q buffer, K and V into the slots the cache reserved for them.</summary>
    private unsafe void AttentionInputs(int l, KvHeadCache[] heads, int rows, TileScratch s, int r0, int r1, Bench.StepTimer? t)
    {
        var c = Config;
        var lw = _w.Layers[l];
        int m = r1 - r0, d = c.HiddenSize, hd = c.HeadDim, qkvWidth = c.QDim + 2 * c.KvDim;
        int rep = heads.Length / c.NumKvHeads;
        fixed (float* x = _x, xn = s.Xn, qkv = s.Qkv, norm = lw.InputNorm, q = _q)
        fixed (int* pos = _positions)
        {
            RmsNorm.Rows(x + (long)r0 * d, d, norm, d, xn, d, m, (float)c.RmsNormEps);
            t?.Mark("rmsnorm");
            Linear(_wqkv[l], xn, d, m, qkv, qkvWidth, accumulate: false);
            if (_bqkv[l] is { } bias)
                for (int i = 0; i < m; i++) TensorPrimitives.Add(new ReadOnlySpan<float>(qkv + (long)i * qkvWidth, qkvWidth), bias, new Span<float>(qkv + (long)i * qkvWidth, qkvWidth));
            t?.Mark("qkv gemm");
            _rope.Rotate(qkv, qkvWidth, 0, c.NumHeads + c.NumKvHeads, pos + r0, 0, m);   // q heads then k heads, same rotation
            t?.Mark("rope");
            for (int i = 0; i < m; i++)
            {
                float* row = qkv + (long)i * qkvWidth;
                new ReadOnlySpan<float>(row, c.QDim).CopyTo(new Span<float>(q + (long)(r0 + i) * c.QDim, c.QDim));
                // Stored head h holds KV head h / rep: rep = 1 normally, the group size when replicated per query head.
                for (int h = 0; h < heads.Length; h++)
                {
                    int g = h / rep, entry = heads[h].Count - rows + r0 + i;   // the block's rows are each head's last entries
                    new ReadOnlySpan<float>(row + c.QDim + g * hd, hd).CopyTo(heads[h].KeySlot(entry));
                    new ReadOnlySpan<float>(row + c.QDim + c.KvDim + g * hd, hd).CopyTo(heads[h].ValueSlot(entry));
                }
            }
            t?.Mark("q out + append");
        }
    }

    /// <summary>Rows [r0, r1) after attention: x += attn·Woᵀ, then x += SwiGLU(RMSNorm(x)·[Wgate; Wup]ᵀ)·Wdownᵀ.</summary>
    private unsafe void OutputAndMlp(int l, TileScratch s, int r0, int r1, Bench.StepTimer? t)
    {
        var c = Config;
        var lw = _w.Layers[l];
        int m = r1 - r0, d = c.HiddenSize, ff = c.IntermediateSize;
        fixed (float* x = _x, attn = _attn, xn = s.Xn, gu = s.GateUp, h = s.H, norm = lw.PostNorm)
        {
            float* xt = x + (long)r0 * d;
            Linear(_wo[l], attn + (long)r0 * c.QDim, c.QDim, m, xt, d, accumulate: true);
            t?.Mark("o gemm");
            RmsNorm.Rows(xt, d, norm, d, xn, d, m, (float)c.RmsNormEps);
            t?.Mark("rmsnorm");
            Linear(_wgu[l], xn, d, m, gu, 2 * ff, accumulate: false);
            t?.Mark("gate/up gemm");
            SwiGlu.Rows(gu, 2 * ff, h, ff, ff, m);
            t?.Mark("swiglu");
            Linear(_wdown[l], h, ff, m, xt, d, accumulate: true);
            t?.Mark("down gemm");
        }
    }

    /// <summary>
    /// C (+)= A·Wᵀ for a tile's rows on this thread — or, when the forward pass is a single tile (a decode step,
    /// a short chunk) with threads to spare, with W's column panels split over the kernel threads: a decode GEMV
    /// streams the weights from memory, and two cores stream more than one.
    /// </summary>
    private unsafe void Linear(PackedWeight w, float* a, int lda, int m, float* c, int ldc, bool accumulate)
    {
        int parts = Math.Min(Compute.Threads, w.Panels / 4);
        if (!_splitColumns || parts <= 1 || (long)m * w.N * w.K < 1 << 18)   // below ~1 MB of weights a hand-off costs about what it saves
        {
            w.Multiply(a, lda, m, c, ldc, accumulate, 0, w.Panels);
            return;
        }
        float* ca = a, cc = c;
        Compute.For(parts, true, i => w.Multiply(ca, lda, m, cc, ldc, accumulate, w.Panels * i / parts, w.Panels * (i + 1) / parts));
    }

    /// <summary>Set while a single tile runs with threads to spare (a decode step, a short chunk): its GEMMs split columns.</summary>
    private bool _splitColumns;

    /// <summary>
    /// Runs tile(scratch, r0, r1, timer) over row tiles covering [0, rows): <see cref="RowTile"/> rows each, the last
    /// ≤ 2·RowTile rows in half tiles so that threads finish together (the tiling depends on rows alone, so results
    /// do not depend on the thread count). Inline for a single tile or thread, else on up to
    /// <see cref="Compute"/>'s threads (one hand-off), each taking the next tile when done and using its
    /// own scratch. Per-op timing only inline; otherwise the phase is charged whole.
    /// </summary>
    private void Tiles(int rows, Action<TileScratch, int, int, Bench.StepTimer?> tile, Bench.StepTimer? timer, string phase)
    {
        const int half = RowTile / 2;
        int full = Math.Max(0, rows - 2 * RowTile) / RowTile, rest = rows - full * RowTile;
        var scratches = _scratch; // one per worker thread of Compute
        int tiles = full + (rest + half - 1) / half, workers = Math.Min(scratches.Length, tiles);
        void Run(TileScratch scratch, int i, Bench.StepTimer? t)
        {
            int r0 = i < full ? i * RowTile : full * RowTile + (i - full) * half;
            tile(scratch, r0, Math.Min(rows, r0 + (i < full ? RowTile : half)), t);
        }
        if (workers <= 1)
        {
            _splitColumns = tiles == 1 && Compute.Threads > 1;
            try
            {
                for (int i = 0; i < tiles; i++) Run(scratches[0], i, timer);
            }
            finally { _splitColumns = false; }
            return;
        }
        WorkQueue.Run(tiles, parallel: true, (w, i) => Run(scratches[w], i, null), maxWorkers: scratches.Length);
        timer?.Mark(phase);
    }

    /// <summary>One worker's tile buffers: normalised rows, QKV, gate/up and the SwiGLU output, [RowTile × width].</summary>
    private sealed class TileScratch(LlamaConfig c)
    {
        public readonly float[] Xn = new float[RowTile * c.HiddenSize];
        public readonly float[] Qkv = new float[RowTile * (c.QDim + 2 * c.KvDim)];
        public readonly float[] GateUp = new float[RowTile * 2 * c.IntermediateSize];
        public readonly float[] H = new float[RowTile * c.IntermediateSize];
    }

    private void EnsureCapacity(int rows)
    {
        var c = Config;
        if (_scratch.Length == 0) _scratch = Enumerable.Range(0, Compute.Threads).Select(_ => new TileScratch(c)).ToArray();
        if (rows <= _capacity) return;
        int cap = Math.Max(rows, _capacity * 2);
        _x = new float[cap * c.HiddenSize];
        _xn = new float[cap * c.HiddenSize];
        _q = new float[cap * c.QDim];
        _attn = new float[cap * c.QDim];
        _positions = new int[cap];
        _capacity = cap;
    }
}
