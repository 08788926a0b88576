using KvNotebooks.Kernels;

namespace KvNotebooks.Cache;

/// <summary>One quantized block of one head: <c>GroupSize</c> tokens' key and value codes (packed,
/// token-major [token × channel]), fp16 scales and zero-points (keys per channel, values per token and
/// channel group) and the tokens' original positions.</summary>
internal sealed class QuantizedBlock
{
    public required byte[] KeyCodes, ValueCodes;
    public required Half[] KeyScale, KeyZero, ValueScale, ValueZero;
    public required int[] Positions;
    public long Bytes => KeyCodes.Length + ValueCodes.Length
        + 2L * (KeyScale.Length + KeyZero.Length + ValueScale.Length + ValueZero.Length) + 4L * Positions.Length;
}

/// <summary>
/// The quantized part of a <see cref="KvCache"/>: per (layer, head) a list of blocks of codes, older than
/// the full-precision residual the head's <see cref="KvHeadCache"/> keeps. Every byte is registered with
/// the cache's pool, so the cache's peak bytes are codes + scales + zero-points + positions + residual pages.
/// Attention reads dequantized values: per KV head, the blocks are expanded into one scratch head (from a
/// separate pool, reported as transient bytes) followed by the residual, and the attention kernel runs on it.
/// </summary>
public sealed class QuantizedKvStore : IDisposable
{
    private readonly List<QuantizedBlock>[][] _blocks;
    private readonly KvPagePool _pool;
    private readonly KvHeadCache _scratch;
    private readonly int _headDim;
    private byte[] _codeBuf = [];
    private float[] _kBuf = [], _vBuf = [], _qBuf = [], _oBuf = [];
    private int[] _keepBuf = [];

    internal QuantizedKvStore(KvQuantization q, int numLayers, int numHeads, int headDim, KvPagePool pool, KvPageRecycler? recycler = null)
    {
        q.Validate(headDim);
        Quantization = q;
        _headDim = headDim;
        _pool = pool;
        ScratchPool = new KvPagePool(pool.PageSize, headDim, recycler);
        _scratch = new KvHeadCache(ScratchPool);
        _blocks = new List<QuantizedBlock>[numLayers][];
        for (int l = 0; l < numLayers; l++)
        {
            _blocks[l] = new List<QuantizedBlock>[numHeads];
            for (int h = 0; h < numHeads; h++) _blocks[l][h] = new();
        }
    }

    public KvQuantization Quantization { get; }
    /// <summary>Where dequantized views live while a head attends (transient, one KV head at a time).</summary>
    public KvPagePool ScratchPool { get; }
    /// <summary>Quantized entries of one head.</summary>
    public int Count(int layer, int head) => _blocks[layer][head].Count * Quantization.GroupSize;
    /// <summary>Bytes of every block now held.</summary>
    public long Bytes { get; private set; }

    /// <summary>Quantizes, for every head of <paramref name="layer"/>, each whole group of residual
    /// entries older than the last <see cref="KvQuantization.Residual"/>; the residual keeps the rest.</summary>
    public void Flush(int layer, KvHeadCache[] residual)
    {
        int G = Quantization.GroupSize, R = Quantization.Residual;
        for (int h = 0; h < residual.Length; h++)
        {
            var head = residual[h];
            int groups = Math.Max(0, head.Count - R) / G;
            if (groups == 0) continue;
            for (int g = 0; g < groups; g++) AddBlock(layer, h, head, g * G);
            int rest = head.Count - groups * G;
            if (_keepBuf.Length < rest) _keepBuf = new int[rest];
            for (int i = 0; i < rest; i++) _keepBuf[i] = groups * G + i;
            head.Keep(_keepBuf.AsSpan(0, rest));
            // The moved entries are counted once: as codes, after the residual released them. (Their
            // bytes did overlap for a moment — the codes exist before the pages are freed — and the
            // pool's byte peak shows that, as an allocator would.)
            _pool.TrackEntries((long)groups * G);
        }
    }

    private void AddBlock(int layer, int h, KvHeadCache head, int first)
    {
        var q = Quantization;
        int G = q.GroupSize, hd = _headDim, bits = q.Bits, gv = q.ValueGroup(hd), n = G * hd;
        if (_kBuf.Length < n) { _kBuf = new float[n]; _vBuf = new float[n]; _codeBuf = new byte[n]; }
        var positions = new int[G];
        for (int t = 0; t < G; t++)
        {
            head.Key(first + t).CopyTo(_kBuf.AsSpan(t * hd, hd));
            head.Value(first + t).CopyTo(_vBuf.AsSpan(t * hd, hd));
            positions[t] = head.Position(first + t);
        }
        int packed = (n * bits + 7) / 8;
        var block = new QuantizedBlock
        {
            KeyCodes = new byte[packed], ValueCodes = new byte[packed],
            KeyScale = new Half[hd], KeyZero = new Half[hd],
            ValueScale = new Half[G * (hd / gv)], ValueZero = new Half[G * (hd / gv)],
            Positions = positions,
        };
        var codes = _codeBuf.AsSpan(0, n);
        for (int c = 0; c < hd; c++)         // keys: per channel, over the block's tokens
            (block.KeyScale[c], block.KeyZero[c]) = KvQuantizer.Quantize(_kBuf.AsSpan(c), G, hd, bits, codes[c..], hd);
        KvQuantizer.Pack(codes, bits, block.KeyCodes);
        for (int t = 0; t < G; t++)          // values: per token, over groups of channels
            for (int g = 0; g < hd / gv; g++)
                (block.ValueScale[t * (hd / gv) + g], block.ValueZero[t * (hd / gv) + g]) =
                    KvQuantizer.Quantize(_vBuf.AsSpan(t * hd + g * gv), gv, 1, bits, codes[(t * hd + g * gv)..], 1);
        KvQuantizer.Pack(codes, bits, block.ValueCodes);
        _blocks[layer][h].Add(block);
        Bytes += block.Bytes;
        _pool.TrackExternal(block.Bytes);
    }

    /// <summary>Dequantized keys and values [GroupSize × headDim] of block <paramref name="b"/> of a head.</summary>
    public void Dequantize(int layer, int head, int b, Span<float> keys, Span<float> values, Span<int> positions)
    {
        var block = _blocks[layer][head][b];
        int G = Quantization.GroupSize, hd = _headDim, bits = Quantization.Bits, gv = Quantization.ValueGroup(hd), n = G * hd;
        Unpack(block.KeyCodes, bits, keys[..n]);
        Unpack(block.ValueCodes, bits, values[..n]);
        Span<float> scale = stackalloc float[hd];
        Span<float> zero = stackalloc float[hd];
        for (int c = 0; c < hd; c++) { scale[c] = (float)block.KeyScale[c]; zero[c] = (float)block.KeyZero[c]; }
        for (int t = 0; t < G; t++)
        {
            var row = keys.Slice(t * hd, hd);
            System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(row, scale, zero, row);   // z + code·s per channel
            for (int g = 0; g < hd / gv; g++)
            {
                int vg = t * (hd / gv) + g;
                var part = values.Slice(t * hd + g * gv, gv);
                System.Numerics.Tensors.TensorPrimitives.Multiply(part, (float)block.ValueScale[vg], part);
                System.Numerics.Tensors.TensorPrimitives.Add(part, (float)block.ValueZero[vg], part);
            }
        }
        block.Positions.CopyTo(positions);
    }

    /// <summary>Packed codes → one float per code.</summary>
    private static void Unpack(ReadOnlySpan<byte> packed, int bits, Span<float> codes)
    {
        int perByte = 8 / bits, mask = (1 << bits) - 1, n = codes.Length;
        for (int i = 0, byteIndex = 0; i < n; byteIndex++)
        {
            int v = packed[byteIndex];
            for (int j = 0; j < perByte && i < n; j++, i++, v >>= bits) codes[i] = v & mask;
        }
    }

    /// <summary>
    /// Attention of one layer over quantized blocks + residual, the drop-in for
    /// <see cref="Attention.Layer(float[], int, int, KvHeadCache[], float, float[])"/>: per KV head, its query heads' rows are gathered, the head is
    /// dequantized into the scratch head and the kernel attends over it.
    /// </summary>
    public void Attend(int layer, KvHeadCache[] residual, float[] q, int rows, int numHeads, float scale, float[] output)
    {
        int hd = _headDim, H = residual.Length, group = numHeads / H, G = Quantization.GroupSize;
        int width = group * hd, stride = numHeads * hd;
        if (_qBuf.Length < rows * width) { _qBuf = new float[rows * width]; _oBuf = new float[rows * width]; }
        if (_kBuf.Length < G * hd) { _kBuf = new float[G * hd]; _vBuf = new float[G * hd]; _codeBuf = new byte[G * hd]; }
        var pos = new int[G];
        KvHeadCache[] view = [_scratch];
        for (int h = 0; h < H; h++)
        {
            _scratch.Clear();
            for (int b = 0; b < _blocks[layer][h].Count; b++)
            {
                Dequantize(layer, h, b, _kBuf, _vBuf, pos);
                _scratch.Append(_kBuf, _vBuf, 0, hd, pos);
            }
            var res = residual[h];
            for (int p = 0; p < res.PageCount; p++)
            {
                var page = res.Page(p);
                int n = Math.Min(res.PageSize, res.Count - p * res.PageSize);
                _scratch.Append(page.Keys, page.Values, 0, hd, page.Positions.AsSpan(0, n));
            }
            for (int r = 0; r < rows; r++) q.AsSpan(r * stride + h * width, width).CopyTo(_qBuf.AsSpan(r * width, width));
            Attention.Layer(_qBuf, rows, group, view, scale, _oBuf);
            for (int r = 0; r < rows; r++) _oBuf.AsSpan(r * width, width).CopyTo(output.AsSpan(r * stride + h * width, width));
        }
        _scratch.Clear();
    }

    /// <summary>Frees every block.</summary>
    public void Clear()
    {
        long entries = 0;
        foreach (var layer in _blocks)
            foreach (var head in layer)
            {
                entries += head.Count * (long)Quantization.GroupSize;
                head.Clear();
            }
        _pool.TrackExternal(-Bytes);
        _pool.TrackEntries(-entries);
        Bytes = 0;
    }

    /// <summary>Drops every block and hands the scratch pages to the recycler.</summary>
    public void Dispose()
    {
        Clear();
        _scratch.Clear();
        ScratchPool.Dispose();
    }
}
