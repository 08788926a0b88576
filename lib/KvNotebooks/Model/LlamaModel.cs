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
/// All activations live in buffers reused across calls.
/// </summary>
public sealed class LlamaModel
{
    private readonly LlamaWeights _w;
    private readonly Rope _rope;
    private readonly float[][] _wqkv;   // per layer [(QDim + 2·KvDim) × d]
    private readonly float[]?[] _bqkv;  // per layer [QDim + 2·KvDim] or null
    private readonly float[][] _wgu;    // per layer [2·ff × d]: gate rows then up rows
    private readonly float _scale;
    private int _capacity;
    private float[] _x = [], _xn = [], _qkv = [], _q = [], _attn = [], _gu = [];

    public LlamaModel(LlamaWeights weights)
    {
        _w = weights;
        var c = weights.Config;
        c.Validate();
        Config = c;
        _rope = new Rope(c);
        _scale = 1f / MathF.Sqrt(c.HeadDim);
        int L = c.NumLayers;
        _wqkv = new float[L][];
        _bqkv = new float[L][];
        _wgu = new float[L][];
        for (int l = 0; l < L; l++)
        {
            var lw = weights.Layers[l];
            _wqkv[l] = [.. lw.Wq, .. lw.Wk, .. lw.Wv];
            if (c.AttentionBias)
                _bqkv[l] = [.. lw.Bq ?? new float[c.QDim], .. lw.Bk ?? new float[c.KvDim], .. lw.Bv ?? new float[c.KvDim]];
            _wgu[l] = [.. lw.WGate, .. lw.WUp];
        }
    }

    public LlamaConfig Config { get; }
    public LlamaWeights Weights => _w;
    /// <summary>When set (benchmarks only), each op of <see cref="Forward"/> charges its time here.</summary>
    internal Bench.StepTimer? Timer { get; set; }

    /// <summary>A cache shaped for this model: one stored head per KV head, or per query head when
    /// <paramref name="storage"/> replicates; quantized when it says so.</summary>
    public KvCache NewCache(int pageSize = 64, KvStorage? storage = null)
    {
        storage ??= KvStorage.Default;
        int heads = storage.ReplicatePerQueryHead ? Config.NumHeads : Config.NumKvHeads;
        return new(Config.NumLayers, heads, Config.HeadDim, pageSize, storage.Quantization);
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
            if ((uint)tokens[i] >= (uint)V)
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"token {i} has id {tokens[i]}, outside the vocabulary [0, {V})");
        EnsureCapacity(rows);
        var timer = Timer;
        timer?.Start();

        int qkvWidth = c.QDim + 2 * c.KvDim, ff = c.IntermediateSize, hd = c.HeadDim;
        var x = _x.AsSpan(0, rows * d);
        for (int i = 0; i < rows; i++) _w.Embedding.AsSpan(tokens[i] * d, d).CopyTo(x.Slice(i * d, d));
        timer?.Mark("embedding");

        for (int l = 0; l < c.NumLayers; l++)
        {
            var lw = _w.Layers[l];
            var xn = _xn.AsSpan(0, rows * d);
            var qkv = _qkv.AsSpan(0, rows * qkvWidth);
            RmsNorm.Forward(x, lw.InputNorm, xn, rows, (float)c.RmsNormEps);
            timer?.Mark("rmsnorm");
            Gemm.MatMulNT(xn, _wqkv[l], qkv, rows, qkvWidth, d);
            timer?.Mark("qkv gemm");
            if (_bqkv[l] is { } bias)
                for (int i = 0; i < rows; i++) TensorPrimitives.Add(qkv.Slice(i * qkvWidth, qkvWidth), bias, qkv.Slice(i * qkvWidth, qkvWidth));
            _rope.Apply(qkv, qkvWidth, c.NumHeads + c.NumKvHeads, positions); // q heads then k heads, same rotation
            timer?.Mark("rope");
            var q = _q.AsSpan(0, rows * c.QDim);
            for (int i = 0; i < rows; i++) qkv.Slice(i * qkvWidth, c.QDim).CopyTo(q.Slice(i * c.QDim, c.QDim));
            // Stored head s holds KV head s / rep: rep = 1 normally, the group size when replicated per query head.
            int rep = cache.NumKvHeads / c.NumKvHeads;
            for (int s = 0; s < cache.NumKvHeads; s++)
            {
                int g = s / rep;
                cache[l, s].Append(qkv.Slice(c.QDim + g * hd), qkv.Slice(c.QDim + c.KvDim + g * hd), 0, qkvWidth, positions);
            }
            timer?.Mark("q copy + append");

            if (cache.Quantized is { } quantized) quantized.Attend(l, cache.Layer(l), _q, rows, c.NumHeads, _scale, _attn);
            else Attention.Layer(_q, rows, c.NumHeads, cache.Layer(l), _scale, _attn);
            timer?.Mark("attention");
            observer?.AfterAttention(l, rows, _q);
            timer?.Mark("observer");
            Gemm.MatMulNT(_attn.AsSpan(0, rows * c.QDim), lw.Wo, x, rows, d, c.QDim, accumulate: true);
            timer?.Mark("o gemm");

            RmsNorm.Forward(x, lw.PostNorm, xn, rows, (float)c.RmsNormEps);
            timer?.Mark("rmsnorm");
            var gu = _gu.AsSpan(0, rows * 2 * ff);
            Gemm.MatMulNT(xn, _wgu[l], gu, rows, 2 * ff, d);
            timer?.Mark("gate/up gemm");
            for (int i = 0; i < rows; i++)
            {
                var row = gu.Slice(i * 2 * ff, 2 * ff);
                SwiGlu.Forward(row[..ff], row[ff..], _attn.AsSpan(i * ff, ff)); // reuse _attn as h [rows × ff]
            }
            timer?.Mark("swiglu");
            Gemm.MatMulNT(_attn.AsSpan(0, rows * ff), lw.WDown, x, rows, d, ff, accumulate: true);
            timer?.Mark("down gemm");
        }

        if (needLogits == 0) return;
        int first = rows - needLogits;
        var xl = x.Slice(first * d, needLogits * d);
        var xnl = _xn.AsSpan(0, needLogits * d);
        RmsNorm.Forward(xl, _w.FinalNorm, xnl, needLogits, (float)c.RmsNormEps);
        Gemm.MatMulNT(xnl, _w.LmHead, logits, needLogits, V, d);
        timer?.Mark("final norm + lm head");
    }

    private void EnsureCapacity(int rows)
    {
        if (rows <= _capacity) return;
        var c = Config;
        int cap = Math.Max(rows, _capacity * 2);
        _x = new float[cap * c.HiddenSize];
        _xn = new float[cap * c.HiddenSize];
        _qkv = new float[cap * (c.QDim + 2 * c.KvDim)];
        _q = new float[cap * c.QDim];
        _attn = new float[cap * Math.Max(c.QDim, c.IntermediateSize)];
        _gu = new float[cap * 2 * c.IntermediateSize];
        _capacity = cap;
    }
}
