using System.Globalization;
using KvNotebooks.Kernels;
using KvNotebooks.Model;

namespace KvNotebooks.HeadMasks;

/// <summary>
/// Locret's retaining heads (huangyuxiang03/Locret): per layer a two-layer network that reads one token's query, key and
/// value and predicts one importance score per KV head,
/// <code>score = W2 · silu(W1 · [q; k; v])</code>
/// (no biases; W1 [hidden × (QDim + 2·KvDim)], W2 [KvHeads × hidden]). Locret reads q and k before RoPE; ours read
/// them after RoPE, as our inference engine holds them (the session's observer sees post-RoPE queries, the cache holds
/// post-RoPE keys and values). Trained by <see cref="RetainingHeadTrainer"/> with the model frozen to regress each KV's
/// causal importance. W1 is kept as three blocks (its q, k and v columns) so that <see cref="Score"/> multiplies the
/// caller's spans in place, without gathering them. Files: safetensors with Locret's tensor names
/// (model.layers.{l}.self_attn.fc1.weight, fc2.weight; fc1's columns in the order q, k, v).
/// </summary>
public sealed class RetainingHeads
{
    private readonly float[][] _w1q, _w1k, _w1v, _w2;
    [ThreadStatic] private static float[]? _scratch;

    public RetainingHeads(int numLayers, int qDim, int kvDim, int numKvHeads, int hiddenSize)
    {
        if (numLayers < 1 || qDim < 1 || kvDim < 1 || numKvHeads < 1 || hiddenSize < 1)
            throw new ArgumentOutOfRangeException(nameof(hiddenSize), "retaining heads need ≥ 1 layer, positive q/kv widths, KV heads and hidden size");
        (NumLayers, QDim, KvDim, NumKvHeads, HiddenSize) = (numLayers, qDim, kvDim, numKvHeads, hiddenSize);
        _w1q = Alloc(hiddenSize * qDim); _w1k = Alloc(hiddenSize * kvDim); _w1v = Alloc(hiddenSize * kvDim); _w2 = Alloc(numKvHeads * hiddenSize);
        float[][] Alloc(int n) => Enumerable.Range(0, numLayers).Select(_ => new float[n]).ToArray();
    }

    /// <summary>Heads for <paramref name="config"/>'s shapes, weights ~ N(0, std²) (Locret's heads start as Hugging Face
    /// initialises a new Linear: std 0.02).</summary>
    public static RetainingHeads Random(LlamaConfig config, int hiddenSize, int seed, float std = 0.02f)
    {
        var r = new RetainingHeads(config.NumLayers, config.QDim, config.KvDim, config.NumKvHeads, hiddenSize);
        var rng = new Random(seed);
        foreach (var a in r._w1q.Concat(r._w1k).Concat(r._w1v).Concat(r._w2))
            for (int i = 0; i < a.Length; i++)
            {
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                a[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
            }
        return r;
    }

    public int NumLayers { get; }
    public int QDim { get; }
    public int KvDim { get; }
    public int NumKvHeads { get; }
    public int HiddenSize { get; }
    /// <summary>Width of W1's input: QDim + 2·KvDim.</summary>
    public int InputSize => QDim + 2 * KvDim;

    /// <summary>W1's q columns of a layer [hidden × QDim] (the trainer's parameter; row-major).</summary>
    public float[] W1Q(int layer) => _w1q[layer];
    public float[] W1K(int layer) => _w1k[layer];
    public float[] W1V(int layer) => _w1v[layer];
    /// <summary>W2 of a layer [KvHeads × hidden].</summary>
    public float[] W2(int layer) => _w2[layer];

    /// <summary>
    /// Scores of <paramref name="rows"/> tokens of <paramref name="layer"/>: q [rows × QDim] (post-RoPE queries), k and v
    /// [rows × KvDim] (post-RoPE keys, values) → scores [rows × KvHeads], higher = keep. Allocation-free once this thread's
    /// scratch has grown to rows × hidden.
    /// </summary>
    public void Score(int layer, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int rows, Span<float> scores)
    {
        if ((uint)layer >= (uint)NumLayers) throw new ArgumentOutOfRangeException(nameof(layer), layer, $"the retaining heads have {NumLayers} layers");
        if (rows < 0 || q.Length < rows * QDim || k.Length < rows * KvDim || v.Length < rows * KvDim || scores.Length < rows * NumKvHeads)
            throw new ArgumentException($"{rows} rows need q ≥ {rows * QDim}, k and v ≥ {rows * KvDim} and scores ≥ {rows * NumKvHeads} values " +
                $"(got {q.Length}, {k.Length}, {v.Length}, {scores.Length})");
        if (rows == 0) return;
        int n = rows * HiddenSize;
        if (_scratch is null || _scratch.Length < n) _scratch = new float[Math.Max(n, 64 * HiddenSize)];
        var pre = _scratch.AsSpan(0, n);
        Forward(layer, q, k, v, rows, pre, pre, scores);
    }

    /// <summary>pre = W1·[q; k; v] [rows × hidden], act = silu(pre) (may be the same span as pre), scores = W2·act.</summary>
    internal void Forward(int layer, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int rows,
        Span<float> pre, Span<float> act, Span<float> scores)
    {
        int hsz = HiddenSize, n = rows * hsz;
        Gemm.MatMulNT(q[..(rows * QDim)], _w1q[layer], pre[..n], rows, hsz, QDim);
        Gemm.MatMulNT(k[..(rows * KvDim)], _w1k[layer], pre[..n], rows, hsz, KvDim, accumulate: true);
        Gemm.MatMulNT(v[..(rows * KvDim)], _w1v[layer], pre[..n], rows, hsz, KvDim, accumulate: true);
        for (int i = 0; i < n; i++) { float x = pre[i]; act[i] = x / (1f + MathF.Exp(-x)); }
        Gemm.MatMulNT(act[..n], _w2[layer], scores[..(rows * NumKvHeads)], rows, NumKvHeads, hsz);
    }

    private static string Fc1(int l) => $"model.layers.{l}.self_attn.fc1.weight";
    private static string Fc2(int l) => $"model.layers.{l}.self_attn.fc2.weight";

    /// <summary>Writes the heads as safetensors (fp32, atomically): fc1 [hidden × (QDim + 2·KvDim)] with the q, k, v
    /// columns in that order, fc2 [KvHeads × hidden], and the widths in the metadata.</summary>
    public void Save(string path)
    {
        var tensors = new List<(string, int[], float[])>();
        for (int l = 0; l < NumLayers; l++)
        {
            var fc1 = new float[HiddenSize * InputSize];
            for (int r = 0; r < HiddenSize; r++)
            {
                _w1q[l].AsSpan(r * QDim, QDim).CopyTo(fc1.AsSpan(r * InputSize));
                _w1k[l].AsSpan(r * KvDim, KvDim).CopyTo(fc1.AsSpan(r * InputSize + QDim));
                _w1v[l].AsSpan(r * KvDim, KvDim).CopyTo(fc1.AsSpan(r * InputSize + QDim + KvDim));
            }
            tensors.Add((Fc1(l), [HiddenSize, InputSize], fc1));
            tensors.Add((Fc2(l), [NumKvHeads, HiddenSize], _w2[l]));
        }
        var meta = new Dictionary<string, string>
        {
            ["format"] = "kvnb-retaining-heads", ["input"] = "post-rope q, post-rope k, v", ["activation"] = "silu",
            ["q_dim"] = QDim.ToString(CultureInfo.InvariantCulture), ["kv_dim"] = KvDim.ToString(CultureInfo.InvariantCulture),
        };
        Safetensors.Write(path, tensors, SafetensorsDtype.F32, meta);
    }

    /// <summary>Reads heads written by <see cref="Save"/>; with <paramref name="config"/>, checks they fit the model.
    /// Errors name the file and the problem.</summary>
    public static RetainingHeads Load(string path, LlamaConfig? config = null)
    {
        var f = SafetensorsFile.Open(path);
        int Meta(string key) => f.Metadata.TryGetValue(key, out var s) && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) && x > 0 ? x
            : throw new InvalidDataException($"{path}: metadata \"{key}\" is missing or not a positive integer (not a retaining-heads file?)");
        int qDim = Meta("q_dim"), kvDim = Meta("kv_dim");
        int layers = 0;
        while (f.Tensors.ContainsKey(Fc1(layers))) layers++;
        if (layers == 0) throw new InvalidDataException($"{path}: no tensor {Fc1(0)}");
        var s1 = f.Tensors[Fc1(0)].Shape;
        if (!f.Tensors.TryGetValue(Fc2(0), out var fc2info)) throw new InvalidDataException($"{path}: no tensor {Fc2(0)}");
        var s2 = fc2info.Shape;
        if (s1.Length != 2 || s2.Length != 2 || s1[1] != qDim + 2 * kvDim || s2[1] != s1[0])
            throw new InvalidDataException($"{path}: fc1 [{string.Join(", ", s1)}] and fc2 [{string.Join(", ", s2)}] do not fit q_dim {qDim}, kv_dim {kvDim}");
        int hidden = s1[0], kvHeads = s2[0];
        if (config is { } c && (layers != c.NumLayers || qDim != c.QDim || kvDim != c.KvDim || kvHeads != c.NumKvHeads))
            throw new InvalidDataException($"{path}: heads for {layers} layers, q {qDim}, kv {kvDim}, {kvHeads} KV heads; the model has {c.NumLayers}, {c.QDim}, {c.KvDim}, {c.NumKvHeads}");
        var r = new RetainingHeads(layers, qDim, kvDim, kvHeads, hidden);
        int inDim = r.InputSize;
        for (int l = 0; l < layers; l++)
        {
            if (!f.Tensors.TryGetValue(Fc1(l), out var i1) || !i1.Shape.SequenceEqual(s1) || !f.Tensors.TryGetValue(Fc2(l), out var i2) || !i2.Shape.SequenceEqual(s2))
                throw new InvalidDataException($"{path}: layer {l}'s fc1/fc2 are missing or shaped unlike layer 0's");
            var fc1 = f.ReadFloat32(Fc1(l));
            for (int row = 0; row < hidden; row++)
            {
                fc1.AsSpan(row * inDim, qDim).CopyTo(r._w1q[l].AsSpan(row * qDim));
                fc1.AsSpan(row * inDim + qDim, kvDim).CopyTo(r._w1k[l].AsSpan(row * kvDim));
                fc1.AsSpan(row * inDim + qDim + kvDim, kvDim).CopyTo(r._w1v[l].AsSpan(row * kvDim));
            }
            f.ReadFloat32(Fc2(l)).CopyTo(r._w2[l], 0);
        }
        return r;
    }
}
