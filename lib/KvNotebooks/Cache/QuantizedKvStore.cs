using KvNotebooks.Kernels;

namespace KvNotebooks.Cache;

/// <summary>One quantized block of one head: the key and value codes of up to <c>GroupSize</c> tokens (packed,
/// token-major [token × channel]), fp16 scales and zero-points (keys per channel, values per token and channel
/// group) and the tokens' original positions. A block quantized whole holds <c>GroupSize</c> tokens; eviction can
/// leave fewer (<see cref="Count"/>): the survivors keep their codes and the block its key scales.</summary>
internal sealed class QuantizedBlock
{
    public required byte[] KeyCodes, ValueCodes;
    public required Half[] KeyScale, KeyZero, ValueScale, ValueZero;
    public required int[] Positions;
    public int Count => Positions.Length;
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
    private int[] _keepBuf = [], _posBuf = [];
    private readonly object _keepLock = new();

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
    public int Count(int layer, int head)
    {
        int n = 0;
        foreach (var b in _blocks[layer][head]) n += b.Count;
        return n;
    }
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
        if (q.Format != KvFormat.Codes)
        {
            var fblock = new QuantizedBlock
            {
                KeyCodes = new byte[2 * n], ValueCodes = new byte[2 * n], KeyScale = [], KeyZero = [], ValueScale = [], ValueZero = [],
                Positions = positions,
            };
            Float16.Encode(_kBuf.AsSpan(0, n), fblock.KeyCodes, q.Format);
            Float16.Encode(_vBuf.AsSpan(0, n), fblock.ValueCodes, q.Format);
            _blocks[layer][h].Add(fblock);
            Bytes += fblock.Bytes;
            _pool.TrackExternal(fblock.Bytes);
            return;
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

    /// <summary>Dequantized keys and values [Count × headDim] of block <paramref name="b"/> of a head; returns its token count.</summary>
    public int Dequantize(int layer, int head, int b, Span<float> keys, Span<float> values, Span<int> positions)
    {
        var block = _blocks[layer][head][b];
        int G = block.Count, hd = _headDim, bits = Quantization.Bits, gv = Quantization.ValueGroup(hd), n = G * hd;
        if (Quantization.Format != KvFormat.Codes)
        {
            Float16.Decode(block.KeyCodes, keys[..n], Quantization.Format);
            Float16.Decode(block.ValueCodes, values[..n], Quantization.Format);
            block.Positions.CopyTo(positions);
            return G;
        }
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
        return G;
    }

    /// <summary>Appends every quantized entry of a head, dequantized, to <paramref name="into"/> (in order).</summary>
    internal void DequantizeInto(int layer, int head, KvHeadCache into)
    {
        int G = Quantization.GroupSize, hd = _headDim;
        if (_kBuf.Length < G * hd) { _kBuf = new float[G * hd]; _vBuf = new float[G * hd]; _codeBuf = new byte[G * hd]; }
        if (_posBuf.Length < G) _posBuf = new int[G];
        for (int b = 0; b < _blocks[layer][head].Count; b++)
        {
            int n = Dequantize(layer, head, b, _kBuf, _vBuf, _posBuf);
            into.Append(_kBuf, _vBuf, 0, hd, _posBuf.AsSpan(0, n));
        }
    }

    /// <summary>
    /// Keeps exactly the quantized entries at <paramref name="indices"/> (strictly increasing, within the head's
    /// quantized entries): a block's survivors keep their codes, its key scales and their value scales; emptied
    /// blocks are freed. Eviction then works the same over quantized storage as over full precision.
    /// </summary>
    internal void Keep(int layer, int head, ReadOnlySpan<int> indices)
    {
        lock (_keepLock) KeepLocked(layer, head, indices);   // heads are compacted in parallel; the byte count is shared
    }

    private void KeepLocked(int layer, int head, ReadOnlySpan<int> indices)
    {
        var blocks = _blocks[layer][head];
        int hd = _headDim, bits = Quantization.Bits, gv = Quantization.ValueGroup(hd), vgs = hd / gv;
        int first = 0, j = 0;
        long evicted = 0;
        var kept = new List<QuantizedBlock>(blocks.Count);
        foreach (var block in blocks)
        {
            int n = block.Count, from = j;
            while (j < indices.Length && indices[j] < first + n) j++;
            int survivors = j - from;
            if (survivors == n) kept.Add(block);
            else
            {
                Bytes -= block.Bytes;
                _pool.TrackExternal(-block.Bytes);
                evicted += n - survivors;
                if (survivors > 0)
                {
                    var slots = new int[survivors];
                    for (int i = 0; i < survivors; i++) slots[i] = indices[from + i] - first;
                    var smaller = Select(block, slots, hd, bits, vgs);
                    kept.Add(smaller);
                    Bytes += smaller.Bytes;
                    _pool.TrackExternal(smaller.Bytes);
                }
            }
            first += n;
        }
        if (j != indices.Length) throw new ArgumentException($"Keep: index {indices[j]} is past the head's {first} quantized entries");
        blocks.Clear();
        blocks.AddRange(kept);
        _pool.TrackEntries(-evicted);
    }

    /// <summary>The tokens of <paramref name="block"/> at <paramref name="slots"/>, as a block of their own.</summary>
    private QuantizedBlock Select(QuantizedBlock block, int[] slots, int hd, int bits, int vgs)
    {
        int n = block.Count, m = slots.Length;
        if (Quantization.Format != KvFormat.Codes)
        {
            var kept = new QuantizedBlock
            {
                KeyCodes = new byte[2 * m * hd], ValueCodes = new byte[2 * m * hd], KeyScale = [], KeyZero = [], ValueScale = [], ValueZero = [],
                Positions = new int[m],
            };
            for (int t = 0; t < m; t++)
            {
                block.KeyCodes.AsSpan(2 * slots[t] * hd, 2 * hd).CopyTo(kept.KeyCodes.AsSpan(2 * t * hd));
                block.ValueCodes.AsSpan(2 * slots[t] * hd, 2 * hd).CopyTo(kept.ValueCodes.AsSpan(2 * t * hd));
                kept.Positions[t] = block.Positions[slots[t]];
            }
            return kept;
        }
        if (_codeBuf.Length < n * hd) _codeBuf = new byte[n * hd];
        var codes = _codeBuf.AsSpan(0, n * hd);
        var picked = new byte[m * hd];
        QuantizedBlock result = new()
        {
            KeyCodes = new byte[(m * hd * bits + 7) / 8], ValueCodes = new byte[(m * hd * bits + 7) / 8],
            KeyScale = block.KeyScale, KeyZero = block.KeyZero,
            ValueScale = new Half[m * vgs], ValueZero = new Half[m * vgs], Positions = new int[m],
        };
        foreach (var (from, to) in new[] { (block.KeyCodes, result.KeyCodes), (block.ValueCodes, result.ValueCodes) })
        {
            for (int i = 0; i < n * hd; i++) codes[i] = (byte)KvQuantizer.Unpack(from, bits, i);
            for (int t = 0; t < m; t++) codes.Slice(slots[t] * hd, hd).CopyTo(picked.AsSpan(t * hd, hd));
            KvQuantizer.Pack(picked, bits, to);
        }
        for (int t = 0; t < m; t++)
        {
            block.ValueScale.AsSpan(slots[t] * vgs, vgs).CopyTo(result.ValueScale.AsSpan(t * vgs, vgs));
            block.ValueZero.AsSpan(slots[t] * vgs, vgs).CopyTo(result.ValueZero.AsSpan(t * vgs, vgs));
            result.Positions[t] = block.Positions[slots[t]];
        }
        return result;
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
        KvHeadCache[] view = [_scratch];
        for (int h = 0; h < H; h++)
        {
            View(layer, h, residual[h]);
            for (int r = 0; r < rows; r++) q.AsSpan(r * stride + h * width, width).CopyTo(_qBuf.AsSpan(r * width, width));
            Attention.Layer(_qBuf, rows, group, view, scale, _oBuf);
            for (int r = 0; r < rows; r++) _oBuf.AsSpan(r * width, width).CopyTo(output.AsSpan(r * stride + h * width, width));
        }
        _scratch.Clear();
    }

    /// <summary>The scratch head filled with head <paramref name="head"/>'s entries, quantized ones dequantized, then the
    /// residual: a transient full-precision view (what attention and scoring read); valid until the next call.</summary>
    internal KvHeadCache View(int layer, int head, KvHeadCache residual) => FillView(layer, head, residual, _scratch);

    /// <summary>Fills <paramref name="view"/> (a head of <see cref="ScratchPool"/>) with head <paramref name="head"/>'s
    /// entries, quantized ones dequantized, then the residual.</summary>
    internal KvHeadCache FillView(int layer, int head, KvHeadCache residual, KvHeadCache view)
    {
        view.Clear();
        DequantizeInto(layer, head, view);
        for (int p = 0; p < residual.PageCount; p++)
        {
            var page = residual.Page(p);
            int n = Math.Min(residual.PageSize, residual.Count - p * residual.PageSize);
            view.Append(page.Keys, page.Values, 0, _headDim, page.Positions.AsSpan(0, n));
        }
        return view;
    }

    /// <summary>A fresh head in <see cref="ScratchPool"/>, for a view of its own.</summary>
    internal KvHeadCache NewViewHead() => new(ScratchPool);

    /// <summary>Frees every block.</summary>
    public void Clear()
    {
        long entries = 0;
        foreach (var layer in _blocks)
            foreach (var head in layer)
            {
                foreach (var b in head) entries += b.Count;
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
