using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvNotebooks.Kernels;

namespace KvNotebooks.Cache;

/// <summary>
/// The AVX-512 (and, through <see cref="PagedFlashAttentionAvx2"/>'s twins, AVX2) pre-fill path of <see cref="Attention.Layer(float[], int, int, int, KvHeadCache[], float, float[], int)"/>
/// for head size 32: fused flash attention straight over the cache's pages, in the style of the training
/// kernel (Training/Ops/FlashAttention.cs). A work item is 64 query rows of one query head; it walks the
/// entries its rows may see in blocks of up to 64 keys (one block never crosses a page). Scores are
/// computed <b>transposed</b>, 8 keys × 32 query rows in 16 Vector512 registers, so each row's softmax
/// statistics are plain lane-wise vector ops. The softmax is fused into the score tile: the accumulators
/// start at −m (the row's running max, base 2: Q is pre-scaled by log2(e)/√d; the first tile, key 0, sets
/// m), so exp2 is taken right in the registers, and m is only raised when a tile's probabilities sum past
/// 2⁸ (the "lazy" rescale: until then p ≤ 2⁸ is harmless in fp32); that rare tile is recomputed exactly,
/// and what was accumulated (O, the row sums, the block's earlier P) is rescaled. Then O += P·V by 8-row
/// × 32 tiles. Only tiles on the causal edge are masked; tiles after a panel's last row are skipped.
/// Items run head by head, so a core's consecutive items reuse that head's keys and values from its L2.
/// Row i of a block of r rows sees entries [0, Count − r + i] of its KV head (chunked pre-fill: anything
/// kept before, then the chunk up to itself); GQA: query head h reads KV head h / (heads / KV heads).
/// </summary>
internal static unsafe class PagedFlashAttention
{
    /// <summary>The head size this path handles (two Vector512 per row).</summary>
    public const int Hd = 32;
    internal const int MR = 8;      // keys per score tile; rows per P·V tile
    internal const int Br = 64;     // query rows per work item: two panels of 32
    private const int Bk = 64;      // keys per block
    private const float Log2E = 1.4426950408889634f;
    /// <summary>A tile whose probabilities (relative to the running max) sum past this raises the max.</summary>
    internal const float Lazy = 256f;
    /// <summary>Masked scores: finite, so exp2 needs no clamp, and exp2(fill − m) is exactly 0.</summary>
    internal const float Fill = -1e30f;
    /// <summary>Work (rows × entries × group × 32) below which a layer runs inline, not worth a thread hand-off.</summary>
    private const long ParallelWork = 1 << 18;

    /// <summary>Whether this path applies: AVX-512 or AVX2 (the tile kernels' twins in <see cref="PagedFlashAttentionAvx2"/>:
    /// the same bits), head size 32, pages a multiple of 8 entries.</summary>
    public static bool Supports(int headDim, int pageSize) =>
        headDim == Hd && pageSize % MR == 0 && Simd.Tier != SimdTier.Portable;

    /// <summary>q row r, head h at q[r·ldq + h·32]; output likewise with ldo. Every KV head's last
    /// <paramref name="rows"/> entries are this block's own keys.</summary>
    public static void Layer(float[] q, int ldq, int rows, int numHeads, KvHeadCache[] kv, float scale, float[] output, int ldo)
    {
        int group = numHeads / kv.Length, blocks = (rows + Br - 1) / Br, items = numHeads * blocks;
        float scale2 = scale * Log2E;
        long work = 0;
        foreach (var c in kv) work += (long)rows * c.Count;
        work *= group * Hd;
        bool wide = Simd.Tier == SimdTier.Avx512;
        fixed (float* pq = q, po = output)
        {
            float* cq = pq, co = po;
            WorkQueue.Run(items, work >= ParallelWork, (_, item) =>
            {
                // head by head (a core's consecutive items reuse that head's keys and values from its L2),
                // the most expensive (last) row blocks first
                int h = item / blocks, rb = blocks - 1 - item % blocks;
                Item(cq + h * Hd, ldq, co + h * Hd, ldo, kv[h / group], rows, rb * Br, scale2, wide);
            });
        }
    }

    /// <summary>Rows [r0, r0 + 64) of one query head (q, o at the head's first column) against its KV head, on the
    /// AVX-512 tile kernels (<paramref name="wide"/>) or their AVX2 twins.</summary>
    private static void Item(float* q, int ldq, float* o, int ldo, KvHeadCache cache, int rows, int r0, float scale2, bool wide)
    {
        float* buf = Buffer();
        float* qt = buf, s = qt + Br * Hd, oacc = s + Bk * Br, m = oacc + Br * Hd, l = m + Br;
        int nr = Math.Min(Br, rows - r0), panels = (nr + 31) / 32;
        int before = cache.Count - rows, lastKey = before + r0 + nr - 1, ps = cache.PageSize;
        Panels32.Gather(q + (long)r0 * ldq, ldq, nr, panels * 32, scale2, qt);
        for (int r = 0; r < Br; r += 16)
        {
            Vector512.Create(Fill).Store(m + r);
            Vector512<float>.Zero.Store(l + r);
        }
        new Span<float>(oacc, panels * 32 * Hd).Clear();

        for (int c0 = 0; c0 <= lastKey;)
        {
            int inPage = c0 % ps, n = Math.Min(Math.Min(Bk, ps - inPage), lastKey + 1 - c0);
            var page = cache.Page(c0 / ps);
            fixed (float* kp = page.Keys, vp = page.Values)
            {
                float* kb = kp + inPage * Hd, vb = vp + inPage * Hd;
                for (int p = 0; p < panels; p++)
                {
                    int a0 = before + r0 + 32 * p;                              // lane 0 sees entries ≤ a0
                    int aLast = before + r0 + Math.Min(32 * p + 31, nr - 1);   // the panel's last real row
                    int keys = Math.Min(n, aLast + 1 - c0);
                    float* pq = qt + p * 32 * Hd, pm = m + 32 * p, pl = l + 32 * p;
                    for (int j = 0; j < keys; j += MR)
                    {
                        // as many tiles as the lazy max allows in one call; then the refused one exactly
                        j = wide ? TilesFast(kb, pq, s + 32 * p, pm, pl, j, keys, c0 - a0, first: c0 + j == 0)
                                 : PagedFlashAttentionAvx2.TilesFast(kb, pq, s + 32 * p, pm, pl, j, keys, c0 - a0, first: c0 + j == 0);
                        if (j < keys)
                        {
                            if (wide) TileSlow(kb + j * Hd, pq, s + 32 * p, j, pm, pl, oacc + 32 * p * Hd, c0 + j - a0);
                            else PagedFlashAttentionAvx2.TileSlow(kb + j * Hd, pq, s + 32 * p, j, pm, pl, oacc + 32 * p * Hd, c0 + j - a0);
                        }
                    }
                }
                // O += P·V, each 8-row group over the keys its last row may see (later P are exact zeros)
                for (int r = 0; r < nr; r += MR)
                {
                    int k = Math.Min(n, before + r0 + Math.Min(r + MR, nr) - c0);
                    if (k <= 0) continue;
                    if (wide) TileTN(s + r, vb, k, oacc + r * Hd);
                    else PagedFlashAttentionAvx2.TileTN(s + r, vb, k, oacc + r * Hd);
                }
            }
            c0 += n;
        }
        for (int r = 0; r < nr; r++)
        {
            float inv = 1f / l[r];
            float* dst = o + (long)(r0 + r) * ldo;
            for (int e = 0; e < Hd; e += 8) (Vector256.Load(oacc + r * Hd + e) * inv).Store(dst + e);
        }
    }

    /// <summary>
    /// Tiles of 8 keys × 32 rows from key j of a block (keys at kb, P at pBlock, key rows Br apart) up to
    /// <paramref name="keys"/>: P = exp2(q·k − m) straight from the registers (masked where key c0 + j + x is
    /// after lane i's row, i.e. i &lt; d + j + x), row sums added to l. Returns the first tile it refused (its
    /// probabilities sum past <see cref="Lazy"/> for some row, so that row's max must rise), having stored
    /// nothing for it, or <paramref name="keys"/>. With <paramref name="first"/>, the first tile (key 0, which
    /// every row sees) sets m to its own row maxima: nothing to rescale yet.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int TilesFast(float* kb, float* qt, float* pBlock, float* m, float* l, int j, int keys, int d, bool first)
    {
        var n0 = first ? Vector512<float>.Zero : -Vector512.Load(m);
        var n1 = first ? Vector512<float>.Zero : -Vector512.Load(m + 16);
        var l0 = Vector512.Load(l);
        var l1 = Vector512.Load(l + 16);
        for (; j < keys; j += MR)
        {
            float* kr = kb + j * Hd, st = pBlock + j * Br;
            Vector512<float> a00 = n0, a01 = n1, a10 = n0, a11 = n1, a20 = n0, a21 = n1, a30 = n0, a31 = n1,
                             a40 = n0, a41 = n1, a50 = n0, a51 = n1, a60 = n0, a61 = n1, a70 = n0, a71 = n1;
            for (int e = 0; e < Hd; e++)
            {
                var b0 = Vector512.Load(qt + e * 32);
                var b1 = Vector512.Load(qt + e * 32 + 16);
                var x = Vector512.Create(kr[e]); a00 = Vector512.FusedMultiplyAdd(x, b0, a00); a01 = Vector512.FusedMultiplyAdd(x, b1, a01);
                x = Vector512.Create(kr[Hd + e]); a10 = Vector512.FusedMultiplyAdd(x, b0, a10); a11 = Vector512.FusedMultiplyAdd(x, b1, a11);
                x = Vector512.Create(kr[2 * Hd + e]); a20 = Vector512.FusedMultiplyAdd(x, b0, a20); a21 = Vector512.FusedMultiplyAdd(x, b1, a21);
                x = Vector512.Create(kr[3 * Hd + e]); a30 = Vector512.FusedMultiplyAdd(x, b0, a30); a31 = Vector512.FusedMultiplyAdd(x, b1, a31);
                x = Vector512.Create(kr[4 * Hd + e]); a40 = Vector512.FusedMultiplyAdd(x, b0, a40); a41 = Vector512.FusedMultiplyAdd(x, b1, a41);
                x = Vector512.Create(kr[5 * Hd + e]); a50 = Vector512.FusedMultiplyAdd(x, b0, a50); a51 = Vector512.FusedMultiplyAdd(x, b1, a51);
                x = Vector512.Create(kr[6 * Hd + e]); a60 = Vector512.FusedMultiplyAdd(x, b0, a60); a61 = Vector512.FusedMultiplyAdd(x, b1, a61);
                x = Vector512.Create(kr[7 * Hd + e]); a70 = Vector512.FusedMultiplyAdd(x, b0, a70); a71 = Vector512.FusedMultiplyAdd(x, b1, a71);
            }
            if (d + j > 1 - MR)   // an edge tile: some key is after lane 0's row
            {
                var fill = Vector512.Create(Fill);
                var i0 = Iota - Vector512.Create(d + j);       // lane − (d + j): key x is visible where ≥ x
                var i1 = i0 + Vector512.Create(16);
                a00 = Mask(a00, i0, 0, fill); a01 = Mask(a01, i1, 0, fill);
                a10 = Mask(a10, i0, 1, fill); a11 = Mask(a11, i1, 1, fill);
                a20 = Mask(a20, i0, 2, fill); a21 = Mask(a21, i1, 2, fill);
                a30 = Mask(a30, i0, 3, fill); a31 = Mask(a31, i1, 3, fill);
                a40 = Mask(a40, i0, 4, fill); a41 = Mask(a41, i1, 4, fill);
                a50 = Mask(a50, i0, 5, fill); a51 = Mask(a51, i1, 5, fill);
                a60 = Mask(a60, i0, 6, fill); a61 = Mask(a61, i1, 6, fill);
                a70 = Mask(a70, i0, 7, fill); a71 = Mask(a71, i1, 7, fill);
            }
            if (first)
            {
                var mx0 = Vector512.Max(Vector512.Max(Vector512.Max(a00, a10), Vector512.Max(a20, a30)), Vector512.Max(Vector512.Max(a40, a50), Vector512.Max(a60, a70)));
                var mx1 = Vector512.Max(Vector512.Max(Vector512.Max(a01, a11), Vector512.Max(a21, a31)), Vector512.Max(Vector512.Max(a41, a51), Vector512.Max(a61, a71)));
                mx0.Store(m);
                mx1.Store(m + 16);
                a00 -= mx0; a10 -= mx0; a20 -= mx0; a30 -= mx0; a40 -= mx0; a50 -= mx0; a60 -= mx0; a70 -= mx0;
                a01 -= mx1; a11 -= mx1; a21 -= mx1; a31 -= mx1; a41 -= mx1; a51 -= mx1; a61 -= mx1; a71 -= mx1;
                n0 = -mx0;
                n1 = -mx1;
                first = false;
            }
            a00 = Exp2(a00); a01 = Exp2(a01); a10 = Exp2(a10); a11 = Exp2(a11);
            a20 = Exp2(a20); a21 = Exp2(a21); a30 = Exp2(a30); a31 = Exp2(a31);
            a40 = Exp2(a40); a41 = Exp2(a41); a50 = Exp2(a50); a51 = Exp2(a51);
            a60 = Exp2(a60); a61 = Exp2(a61); a70 = Exp2(a70); a71 = Exp2(a71);
            var s0 = ((a00 + a10) + (a20 + a30)) + ((a40 + a50) + (a60 + a70));
            var s1 = ((a01 + a11) + (a21 + a31)) + ((a41 + a51) + (a61 + a71));
            var lazy = Vector512.Create(Lazy);
            if (Vector512.GreaterThanAny(s0, lazy) || Vector512.GreaterThanAny(s1, lazy)) break;
            a00.Store(st); a01.Store(st + 16);
            a10.Store(st + Br); a11.Store(st + Br + 16);
            a20.Store(st + 2 * Br); a21.Store(st + 2 * Br + 16);
            a30.Store(st + 3 * Br); a31.Store(st + 3 * Br + 16);
            a40.Store(st + 4 * Br); a41.Store(st + 4 * Br + 16);
            a50.Store(st + 5 * Br); a51.Store(st + 5 * Br + 16);
            a60.Store(st + 6 * Br); a61.Store(st + 6 * Br + 16);
            a70.Store(st + 7 * Br); a71.Store(st + 7 * Br + 16);
            l0 += s0;
            l1 += s1;
        }
        l0.Store(l);
        l1.Store(l + 16);
        return j;
    }

    /// <summary>
    /// The exact update for a tile <see cref="TilesFast"/> refused: raw scores, m' = max(m, tile max) per row,
    /// everything accumulated so far (row sums l, this panel's O rows, the P of keys [0, j) of this block
    /// at pBlock) scaled by exp2(m − m'), then P = exp2(s − m') stored at key row j.
    /// </summary>
    private static void TileSlow(float* kr, float* qt, float* pBlock, int j, float* m, float* l, float* oPanel, int d)
    {
        var sc = stackalloc Vector512<float>[2 * MR];
        var i0 = Iota - Vector512.Create(d);
        var fill = Vector512.Create(Fill);
        var mx0 = fill;
        var mx1 = fill;
        for (int x = 0; x < MR; x++)
            for (int half = 0; half < 2; half++)
            {
                var acc = Vector512<float>.Zero;
                for (int e = 0; e < Hd; e++)
                    acc = Vector512.FusedMultiplyAdd(Vector512.Create(kr[x * Hd + e]), Vector512.Load(qt + e * 32 + 16 * half), acc);
                acc = Mask(acc, i0 + Vector512.Create(16 * half), x, fill);
                sc[2 * x + half] = acc;
                if (half == 0) mx0 = Vector512.Max(mx0, acc); else mx1 = Vector512.Max(mx1, acc);
            }
        var m0 = Vector512.Load(m);
        var m1 = Vector512.Load(m + 16);
        var new0 = Vector512.Max(m0, mx0);
        var new1 = Vector512.Max(m1, mx1);
        var c0 = VectorMath.Exp2(m0 - new0);
        var c1 = VectorMath.Exp2(m1 - new1);
        var s0 = Vector512.Load(l) * c0;
        var s1 = Vector512.Load(l + 16) * c1;
        for (int k = 0; k < j; k++)
        {
            (Vector512.Load(pBlock + k * Br) * c0).Store(pBlock + k * Br);
            (Vector512.Load(pBlock + k * Br + 16) * c1).Store(pBlock + k * Br + 16);
        }
        for (int i = 0; i < 32; i++)
        {
            var ci = Vector512.Create(i < 16 ? c0.GetElement(i) : c1.GetElement(i - 16));
            (Vector512.Load(oPanel + i * Hd) * ci).Store(oPanel + i * Hd);
            (Vector512.Load(oPanel + i * Hd + 16) * ci).Store(oPanel + i * Hd + 16);
        }
        for (int x = 0; x < MR; x++)
        {
            var p0 = Exp2(sc[2 * x] - new0);
            var p1 = Exp2(sc[2 * x + 1] - new1);
            p0.Store(pBlock + (j + x) * Br);
            p1.Store(pBlock + (j + x) * Br + 16);
            s0 += p0;
            s1 += p1;
        }
        s0.Store(l);
        s1.Store(l + 16);
        new0.Store(m);
        new1.Store(m + 16);
    }

    /// <summary>s where lane (i − d) ≥ x, i.e. key j0 + x is not after the lane's row; else fill.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Mask(Vector512<float> s, Vector512<int> laneMinusD, int x, Vector512<float> fill) =>
        Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(laneMinusD, Vector512.Create(x)).AsSingle(), s, fill);

    /// <summary>
    /// 2^x for finite x, with three ops on the FMA pipes instead of a polynomial's five (they are shared with the
    /// products, the rest runs beside them): x is rounded to a multiple of 1/32 by adding 1.5·2¹⁸ (the low five
    /// mantissa bits of the sum then index a 32-entry table of 2^(j/32)), 2^r on the remainder |r| ≤ 1/64 is a
    /// quadratic, and vscalefps applies 2^floor. Relative error ≤ 1.7e-7 (fp32 rounding included). x ≤ −2¹⁷
    /// (the masked fill) gives 0; x > 128 gives +∞.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp2(Vector512<float> x)
    {
        var magic = Vector512.Create(393216f);                 // 1.5·2¹⁸: one ulp of the sum is 1/32
        var t = x + magic;
        var xr = t - magic;                                    // x rounded to a multiple of 1/32
        var r = x - xr;                                        // |r| ≤ 1/64
        var table = Avx512Ops.PermuteVar16x32x2(TableLow, t.AsInt32(), TableHigh);   // 2^(j/32), j = round(32x) mod 32
        var q = Vector512.FusedMultiplyAdd(Vector512.Create(ExpC2), r, Vector512.Create(ExpC1));
        var p = Vector512.FusedMultiplyAdd(table * r, q, table);   // table·(1 + r·q) ≈ 2^(j/32 + r)
        return Avx512Ops.Scale(p, xr);                           // · 2^floor(xr)
    }

    private static readonly Vector512<float> TableLow = Table(0), TableHigh = Table(16);

    private static Vector512<float> Table(int first)
    {
        Span<float> t = stackalloc float[16];
        for (int j = 0; j < 16; j++) t[j] = TableEntry(first + j);
        return Vector512.Create((ReadOnlySpan<float>)t);
    }

    /// <summary>Entry j of the exp2 table: 2^(j/32) rounded to fp32.</summary>
    internal static float TableEntry(int j) => (float)Math.Pow(2, j / 32.0);

    /// <summary>The quadratic of the table exp2: 2^r ≈ 1 + r·(ExpC1 + ExpC2·r) for |r| ≤ 1/64.</summary>
    internal const float ExpC1 = 6.9315739913e-01f, ExpC2 = 2.4023181919e-01f;

    /// <summary>C[8 × 32] += A·V: A(r, kk) = a[kk·Br + r] (P stored transposed), V rows at stride 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileTN(float* a, float* b, int k, float* c)
    {
        Vector512<float> a00 = Vector512.Load(c), a01 = Vector512.Load(c + 16), a10 = Vector512.Load(c + 32), a11 = Vector512.Load(c + 48),
                         a20 = Vector512.Load(c + 64), a21 = Vector512.Load(c + 80), a30 = Vector512.Load(c + 96), a31 = Vector512.Load(c + 112),
                         a40 = Vector512.Load(c + 128), a41 = Vector512.Load(c + 144), a50 = Vector512.Load(c + 160), a51 = Vector512.Load(c + 176),
                         a60 = Vector512.Load(c + 192), a61 = Vector512.Load(c + 208), a70 = Vector512.Load(c + 224), a71 = Vector512.Load(c + 240);
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector512.Load(b + kk * 32);
            var b1 = Vector512.Load(b + kk * 32 + 16);
            float* ak = a + kk * Br;
            var x = Vector512.Create(ak[0]); a00 = Vector512.FusedMultiplyAdd(x, b0, a00); a01 = Vector512.FusedMultiplyAdd(x, b1, a01);
            x = Vector512.Create(ak[1]); a10 = Vector512.FusedMultiplyAdd(x, b0, a10); a11 = Vector512.FusedMultiplyAdd(x, b1, a11);
            x = Vector512.Create(ak[2]); a20 = Vector512.FusedMultiplyAdd(x, b0, a20); a21 = Vector512.FusedMultiplyAdd(x, b1, a21);
            x = Vector512.Create(ak[3]); a30 = Vector512.FusedMultiplyAdd(x, b0, a30); a31 = Vector512.FusedMultiplyAdd(x, b1, a31);
            x = Vector512.Create(ak[4]); a40 = Vector512.FusedMultiplyAdd(x, b0, a40); a41 = Vector512.FusedMultiplyAdd(x, b1, a41);
            x = Vector512.Create(ak[5]); a50 = Vector512.FusedMultiplyAdd(x, b0, a50); a51 = Vector512.FusedMultiplyAdd(x, b1, a51);
            x = Vector512.Create(ak[6]); a60 = Vector512.FusedMultiplyAdd(x, b0, a60); a61 = Vector512.FusedMultiplyAdd(x, b1, a61);
            x = Vector512.Create(ak[7]); a70 = Vector512.FusedMultiplyAdd(x, b0, a70); a71 = Vector512.FusedMultiplyAdd(x, b1, a71);
        }
        a00.Store(c); a01.Store(c + 16); a10.Store(c + 32); a11.Store(c + 48);
        a20.Store(c + 64); a21.Store(c + 80); a30.Store(c + 96); a31.Store(c + 112);
        a40.Store(c + 128); a41.Store(c + 144); a50.Store(c + 160); a51.Store(c + 176);
        a60.Store(c + 192); a61.Store(c + 208); a70.Store(c + 224); a71.Store(c + 240);
    }

    private static readonly Vector512<int> Iota = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    [ThreadStatic] private static float[]? _buffer;

    /// <summary>This thread's Q panels [64 × 32], P [64 keys × 64 rows], O [64 × 32], m and l [64], 64-byte aligned.</summary>
    private static float* Buffer()
    {
        _buffer ??= GC.AllocateUninitializedArray<float>(Br * Hd + Bk * Br + Br * Hd + 2 * Br + 16, pinned: true);
        return (float*)(((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer)) + 63) & ~(nint)63);
    }
}
