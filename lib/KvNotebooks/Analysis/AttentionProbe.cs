using KvNotebooks.Cache;
using KvNotebooks.Model;

namespace KvNotebooks.Analysis;

/// <summary>
/// Reads the attention weights of a model on one sequence, for pictures of what heads do: a single
/// full-attention pre-fill, recording each layer's post-RoPE queries; the cache then holds every
/// post-RoPE key, so row i of head h is softmax(q_i·k_j/√d) over j ≤ i — exactly what the engine computed.
/// </summary>
public sealed class AttentionProbe : ILayerObserver
{
    private readonly LlamaModel _model;
    private readonly float[][] _queries;
    private KvCache? _cache;
    private int _rows;

    public AttentionProbe(LlamaModel model, IReadOnlyList<int> tokens)
    {
        _model = model;
        var c = model.Config;
        _queries = new float[c.NumLayers][];
        _cache = model.NewCache();
        var positions = Enumerable.Range(0, tokens.Count).ToArray();
        model.Forward(tokens.ToArray(), positions, _cache, LogitRows.None, default, this);
        Tokens = tokens.ToArray();
    }

    public int[] Tokens { get; }
    public LlamaConfig Config => _model.Config;

    void ILayerObserver.AfterAttention(int layer, int rows, float[] queries)
    {
        _rows = rows;
        _queries[layer] = queries.AsSpan(0, rows * _model.Config.QDim).ToArray();
    }

    /// <summary>Attention weights of query head <paramref name="head"/> at row <paramref name="row"/> over keys 0…row.</summary>
    public double[] Row(int layer, int head, int row)
    {
        var c = _model.Config;
        if ((uint)row >= (uint)_rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"row outside [0, {_rows})");
        if ((uint)head >= (uint)c.NumHeads) throw new ArgumentOutOfRangeException(nameof(head), head, $"head outside [0, {c.NumHeads})");
        var kv = _cache![layer, head / c.GroupSize];
        int hd = c.HeadDim;
        var q = _queries[layer].AsSpan(row * c.QDim + head * hd, hd);
        var w = new double[row + 1];
        double max = double.NegativeInfinity, scale = 1.0 / Math.Sqrt(hd);
        for (int j = 0; j <= row; j++)
        {
            var k = kv.Key(j);
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[d] * k[d];
            w[j] = s * scale;
            max = Math.Max(max, w[j]);
        }
        double sum = 0;
        for (int j = 0; j <= row; j++) sum += w[j] = Math.Exp(w[j] - max);
        for (int j = 0; j <= row; j++) w[j] /= sum;
        return w;
    }

    /// <summary>Attention mass each KV head (averaged over its query heads and over <paramref name="rows"/>)
    /// puts on keys more than <paramref name="window"/> positions back and not among the first <paramref name="sink"/>
    /// tokens: [layer, KV head] — what a streaming head with that sink and window could not see. Near 0 for a local
    /// head (or one that parks its attention on the sinks); large for a head that retrieves from far away.</summary>
    public double[,] FarMass(IReadOnlyList<int> rows, int window, int sink = 0) =>
        PerKvHead(rows, (w, r) => { double m = 0; for (int j = sink; j < r - window; j++) m += w[j]; return m; });

    /// <summary>Attention mass each KV head puts on the given key positions (e.g. where the answer is),
    /// averaged over its query heads and over <paramref name="rows"/>: [layer, KV head].</summary>
    public double[,] MassOn(IReadOnlyList<int> rows, IReadOnlyCollection<int> keys) =>
        PerKvHead(rows, (w, r) => keys.Where(k => k <= r).Sum(k => w[k]));

    /// <summary>measure(weights of a row, row) averaged over rows and over the query heads of each KV head.</summary>
    private double[,] PerKvHead(IReadOnlyList<int> rows, Func<double[], int, double> measure)
    {
        var c = _model.Config;
        var result = new double[c.NumLayers, c.NumKvHeads];
        for (int l = 0; l < c.NumLayers; l++)
            for (int h = 0; h < c.NumHeads; h++)
                result[l, h / c.GroupSize] += rows.Sum(r => measure(Row(l, h, r), r)) / rows.Count / c.GroupSize;
        return result;
    }
}
