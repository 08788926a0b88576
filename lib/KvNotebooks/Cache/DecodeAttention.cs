using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvNotebooks.Kernels;

namespace KvNotebooks.Cache;

/// <summary>
/// The AVX-512 path of <see cref="Attention.Layer(float[], int, int, int, KvHeadCache[], float, float[], int)"/>
/// for a few new rows (a decode step, or a tiny chunk): one pass over a KV head's pages serves every query
/// vector that reads it — the rows × the query heads of its GQA group — so keys and values are read once per
/// group, not once per query head. Decode at long context is memory-bound; this is what it saves.
/// Keys go in blocks of up to 64 within a page: per 16 keys, 16 partial dot products (one FMA per 16 dims) are
/// summed by a transpose-add tree into one vector of 16 scores (no horizontal sum per key); the block's scores
/// are exponentiated together (online softmax per block, exp2 with Q pre-scaled by log2(e)/√d); O += p·V streams
/// the value rows in order with the accumulators in registers (from DRAM, order matters more than arithmetic:
/// a stride-2-lines pass over V was half as fast, and software prefetch of the next block slower still). Long heads are split into
/// ranges of <see cref="SplitKeys"/> entries, each a work item with its own (max, sum, O), merged in a fixed
/// order afterwards (flash-decoding): parallel even for one KV head, and the same bits on any thread count.
/// </summary>
internal static unsafe class DecodeAttention
{
    /// <summary>Entries per work item: split points depend on the shape alone.</summary>
    private const int SplitKeys = 512;
    /// <summary>Keys per block (within one page): a block's scores are computed, then exponentiated, then used.</summary>
    private const int Block = 64;
    private const float Log2E = 1.4426950408889634f;
    /// <summary>Work (entries × head size × query vectors) below which a layer runs inline, not worth a thread hand-off.</summary>
    private const long ParallelWork = 1 << 17;

    /// <summary>Whether this path applies: AVX-512, head size a multiple of 16, pages of 16k entries, and the
    /// query vectors of one KV head (rows × group) small enough for their state to live on the stack.</summary>
    public static bool Supports(int headDim, int pageSize, int rows, int group) =>
        headDim % 16 == 0 && pageSize % 16 == 0 && (long)rows * group * headDim <= 8192
        && Vector512.IsHardwareAccelerated && !ComputeContext.Current.Portable;

    /// <summary>Layouts as in <see cref="Attention.Layer(float[], int, int, int, KvHeadCache[], float, float[], int)"/>.</summary>
    public static void Layer(float[] q, int ldq, int rows, int numHeads, KvHeadCache[] kv, float scale, float[] output, int ldo)
    {
        int H = kv.Length, group = numHeads / H, hd = kv[0].HeadDim, vectors = rows * group;
        int maxSplits = 1;
        foreach (var c in kv) maxSplits = Math.Max(maxSplits, (c.Count + SplitKeys - 1) / SplitKeys);
        int stride = hd + 2;                                 // per query vector and split: O[hd], m, l
        int need = H * maxSplits * vectors * stride;
        var partial = _partial is { } pa && pa.Length >= need ? pa : _partial = GC.AllocateUninitializedArray<float>(need, pinned: true);
        long work = 0;
        foreach (var c in kv) work += (long)c.Count * hd * vectors;
        fixed (float* pq = q, po = output, pp = partial)
        {
            float* cq = pq, co = po, cp = pp;
            WorkQueue.Run(H * maxSplits, work >= ParallelWork, (_, item) =>
            {
                int g = item / maxSplits, sp = item % maxSplits;
                var cache = kv[g];
                int k0 = sp * SplitKeys, k1 = Math.Min(cache.Count, k0 + SplitKeys);
                float* part = cp + (long)item * vectors * stride;
                if (k0 >= k1)
                {
                    for (int v = 0; v < vectors; v++) { part[v * stride + hd] = float.NegativeInfinity; part[v * stride + hd + 1] = 0; }
                    return;
                }
                Range(cq + g * group * hd, ldq, rows, group, cache, k0, k1, scale * Log2E, part, stride);
            });
            // merge the splits of each (KV head, query vector) in order: O = Σ O_s·2^(m_s − M), l likewise
            for (int g = 0; g < H; g++)
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < group; j++)
                    {
                        int v = r * group + j;
                        float mMax = float.NegativeInfinity;
                        for (int sp = 0; sp < maxSplits; sp++) mMax = Math.Max(mMax, cp[((long)(g * maxSplits + sp) * vectors + v) * stride + hd]);
                        float* dst = co + (long)r * ldo + (g * group + j) * hd;
                        new Span<float>(dst, hd).Clear();
                        float l = 0;
                        for (int sp = 0; sp < maxSplits; sp++)
                        {
                            float* part = cp + ((long)(g * maxSplits + sp) * vectors + v) * stride;
                            if (part[hd + 1] == 0) continue;
                            float w = float.Exp2(part[hd] - mMax);
                            l += part[hd + 1] * w;
                            var wv = Vector512.Create(w);
                            for (int e = 0; e < hd; e += 16) Vector512.FusedMultiplyAdd(Vector512.Load(part + e), wv, Vector512.Load(dst + e)).Store(dst + e);
                        }
                        var inv = Vector512.Create(1f / l);
                        for (int e = 0; e < hd; e += 16) (Vector512.Load(dst + e) * inv).Store(dst + e);
                    }
        }
    }

    /// <summary>
    /// Entries [k0, k1) of one KV head against its query vectors: row r's query head (group's j-th) at
    /// q[r·ldq + j·hd]; row r sees entries ≤ Count − rows + r. Writes, per vector v = r·group + j, the unnormalised
    /// O, the running max m (base 2) and sum l at part[v·stride …] (l = 0: the vector saw nothing here).
    /// </summary>
    private static void Range(float* q, int ldq, int rows, int group, KvHeadCache cache, int k0, int k1, float scale2, float* part, int stride)
    {
        int hd = cache.HeadDim, ps = cache.PageSize, nv = rows * group, chunks = hd / 16, before = cache.Count - rows;
        // per vector: scaled query, O accumulator, m, l (on the stack: Supports bounds rows × group × hd)
        float* qs = stackalloc float[nv * hd + 16];
        float* acc = stackalloc float[nv * hd + 16];
        float* m = stackalloc float[nv];
        float* l = stackalloc float[nv];
        float* pbuf = stackalloc float[Block * nv];
        Vector512<float>* scores = stackalloc Vector512<float>[16];
        for (int v = 0; v < nv; v++)
        {
            int r = v / group, j = v % group;
            for (int e = 0; e < hd; e += 16)
                (Vector512.Load(q + (long)r * ldq + j * hd + e) * Vector512.Create(scale2)).Store(qs + v * hd + e);
            m[v] = float.NegativeInfinity;
            l[v] = 0;
        }
        new Span<float>(acc, nv * hd).Clear();

        for (int b0 = k0; b0 < k1;)
        {
            int inPage = b0 % ps, n = Math.Min(Math.Min(Block, ps - inPage), k1 - b0), subs = (n + 15) / 16;
            var page = cache.Page(b0 / ps);
            fixed (float* kp = page.Keys, vp = page.Values)
            {
                float* kb = kp + inPage * hd, vb = vp + inPage * hd;
                for (int v = 0; v < nv; v++)
                {
                    int visible = Math.Min(n, before + v / group - b0 + 1);   // row r sees entries ≤ before + r
                    float* pv = pbuf + v * Block;
                    if (visible <= 0)
                    {
                        new Span<float>(pv, Block).Clear();
                        continue;
                    }
                    float* qv = qs + v * hd;
                    var blockMax = Vector512.Create(float.NegativeInfinity);
                    for (int sb = 0; sb < subs; sb++)
                    {
                        // key x's 16 partial products go to slot 4·(x mod 4) + x / 4, the order Reduce16 sums into lane x
                        for (int x = 0; x < 16; x++)
                        {
                            float* kx = kb + (sb * 16 + x) * hd;
                            var sx = Vector512.Load(qv) * Vector512.Load(kx);
                            for (int c = 1; c < chunks; c++) sx = Vector512.FusedMultiplyAdd(Vector512.Load(qv + 16 * c), Vector512.Load(kx + 16 * c), sx);
                            scores[4 * (x & 3) + (x >> 2)] = sx;
                        }
                        var sv = Reduce16(scores);
                        int left = visible - sb * 16;   // entries past the row's limit or the range (stale page slots included)
                        if (left < 16)
                            sv = Vector512.ConditionalSelect(Vector512.LessThan(Iota, Vector512.Create(left)).AsSingle(), sv, Vector512.Create(float.NegativeInfinity));
                        sv.Store(pv + sb * 16);
                        blockMax = Vector512.Max(blockMax, sv);
                    }
                    float mx = MaxAcross(blockMax);
                    if (mx > m[v])
                    {
                        // the running max rises: rescale what was accumulated (nothing, the first time)
                        float corr = m[v] == float.NegativeInfinity ? 0f : float.Exp2(m[v] - mx);
                        l[v] *= corr;
                        var cv = Vector512.Create(corr);
                        for (int e = 0; e < hd; e += 16) (Vector512.Load(acc + v * hd + e) * cv).Store(acc + v * hd + e);
                        m[v] = mx;
                    }
                    var mv = Vector512.Create(m[v]);
                    var sum = Vector512<float>.Zero;
                    for (int sb = 0; sb < subs; sb++)
                    {
                        var p = VectorMath.Exp2(Vector512.Load(pv + sb * 16) - mv);   // masked lanes: 2^−∞ = 0
                        p.Store(pv + sb * 16);
                        sum += p;
                    }
                    l[v] += Vector512.Sum(sum);
                }
                // O_v += Σ_x p_v[x] · V_x, value rows in order (a stream), accumulators in registers: 32 dims at a time
                for (int v = 0; v < nv; v++)
                    for (int c = 0; c < chunks; c += 2)
                    {
                        float* a = acc + v * hd + 16 * c, pv = pbuf + v * Block, vc = vb + 16 * c;
                        var o0 = Vector512.Load(a);
                        var o1 = c + 1 < chunks ? Vector512.Load(a + 16) : default;
                        if (c + 1 < chunks)
                            for (int x = 0; x < n; x++)
                            {
                                var px = Vector512.Create(pv[x]);
                                o0 = Vector512.FusedMultiplyAdd(px, Vector512.Load(vc + x * hd), o0);
                                o1 = Vector512.FusedMultiplyAdd(px, Vector512.Load(vc + x * hd + 16), o1);
                            }
                        else
                            for (int x = 0; x < n; x++) o0 = Vector512.FusedMultiplyAdd(Vector512.Create(pv[x]), Vector512.Load(vc + x * hd), o0);
                        o0.Store(a);
                        if (c + 1 < chunks) o1.Store(a + 16);
                    }
            }
            b0 += n;
        }
        for (int v = 0; v < nv; v++)
        {
            new Span<float>(acc + v * hd, hd).CopyTo(new Span<float>(part + v * stride, hd));
            part[v * stride + hd] = m[v];
            part[v * stride + hd + 1] = l[v];
        }
    }

    /// <summary>Lane 4c + k of the result = the sum of the 16 lanes of s[4k + c]: a transpose-add tree (256-bit
    /// halves, 128-bit quarters, then within 128-bit lanes) instead of 16 horizontal sums.</summary>
    private static Vector512<float> Reduce16(Vector512<float>* s)
    {
        // 16 → 8: [a.lo256 + a.hi256 | b.lo256 + b.hi256]
        var t0 = Half(s[0], s[1]); var t1 = Half(s[2], s[3]); var t2 = Half(s[4], s[5]); var t3 = Half(s[6], s[7]);
        var t4 = Half(s[8], s[9]); var t5 = Half(s[10], s[11]); var t6 = Half(s[12], s[13]); var t7 = Half(s[14], s[15]);
        // 8 → 4: 128-bit lane c of u_i holds 4 partial sums of s[4i + c]
        var u0 = Quarter(t0, t1); var u1 = Quarter(t2, t3); var u2 = Quarter(t4, t5); var u3 = Quarter(t6, t7);
        // within 128-bit lanes: lane c = [s[c], s[4 + c], s[8 + c], s[12 + c]] summed
        var w0 = Avx512Ops.Shuffle(u0, u1, 0b01_00_01_00) + Avx512Ops.Shuffle(u0, u1, 0b11_10_11_10);
        var w1 = Avx512Ops.Shuffle(u2, u3, 0b01_00_01_00) + Avx512Ops.Shuffle(u2, u3, 0b11_10_11_10);
        return Avx512Ops.Shuffle(w0, w1, 0b10_00_10_00) + Avx512Ops.Shuffle(w0, w1, 0b11_01_11_01);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Half(Vector512<float> a, Vector512<float> b) =>
        Avx512Ops.Shuffle4x128(a, b, 0b01_00_01_00) + Avx512Ops.Shuffle4x128(a, b, 0b11_10_11_10);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Quarter(Vector512<float> a, Vector512<float> b) =>
        Avx512Ops.Shuffle4x128(a, b, 0b10_00_10_00) + Avx512Ops.Shuffle4x128(a, b, 0b11_01_11_01);

    private static float MaxAcross(Vector512<float> v)
    {
        var h = Vector256.Max(v.GetLower(), v.GetUpper());
        var q = Vector128.Max(h.GetLower(), h.GetUpper());
        q = Vector128.Max(q, Sse.Shuffle(q, q, 0b01_00_11_10));
        q = Vector128.Max(q, Sse.Shuffle(q, q, 0b10_11_00_01));
        return q.ToScalar();
    }

    private static readonly Vector512<int> Iota = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    [ThreadStatic] private static float[]? _partial;
}
