using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;

namespace KvNotebooks.Training.Ops;

/// <summary>
/// The AVX-512 path of <see cref="BlockedAttentionOp"/> for head size 32: flash-attention forward and
/// backward with every product done by 8 × 32 register tiles (16 Vector512 accumulators) and the
/// softmax fused into the tiles, computed <b>transposed</b>: a score tile is 8 keys × 32 query rows,
/// so the query rows lie along the vector lanes and the row-wise softmax statistics (running max,
/// sum, log-sum-exp, D = dO·o) are plain vertical vector ops, never horizontal reductions.
/// Scores are computed in base 2 (Q is pre-scaled by log2(e)/√hd, exp is <see cref="VectorMath.Exp2(System.Runtime.Intrinsics.Vector512{float})"/>).
///
/// Forward: work items (sequence, query head, block of 64 rows) walk the visible keys in blocks of 64
/// (online softmax, O rescaled inside the P·V tile). Backward (FlashAttention-2 order): items
/// (sequence, KV head, block of 64 keys) own that block's dK and dV and walk the query rows that see
/// it, for every query head of the group. dQ rows receive from many key blocks: the key blocks of a
/// (sequence, KV head) are dealt into G fixed groups, each group's blocks run in order on one thread
/// into the group's own dQ buffer, and the buffers are summed in a fixed order. G depends only on
/// the shape (1 when there are enough sequences × KV heads to keep the threads busy), so results are
/// bitwise the same whatever the thread count or the scheduling.
/// Only tiles on a mask edge (the causal diagonal, a streaming head's window edge, sequence ends) are
/// masked element-wise; tiles nobody sees are skipped.
/// Inputs are first gathered per head into padded, 64-byte aligned buffers (O(T·d), against O(T²·d)).
///
/// <b>Active row blocks.</b> Both directions take an optional filter <c>activeRows</c> [S × ⌈T/64⌉]: forward
/// computes o and lse only for the 64-row blocks marked active (other rows are left as they were), and
/// backward walks only those blocks' query rows. It is meant for a loss that reads a few rows (the last
/// layer of a model whose loss sits at chosen positions): when dO is zero outside the active blocks,
/// their products are exact zeros, so skipping them changes no bit of dQ, dK or dV (dQ of a skipped row is 0).
/// </summary>
internal static unsafe class FlashAttention
{
    /// <summary>The head size this path handles (two Vector512 per row).</summary>
    public const int Hd = 32;
    private const int MR = 8;       // keys per score tile (and query rows per dQ / O tile)
    private const int Bc = 64;      // keys per block
    private const int Br = 64;      // query rows per block: two 32-row panels
    private const float Log2E = 1.4426950408889634f, Ln2 = 0.6931471805599453f;
    /// <summary>Work (T² × sequences × heads × 32, twice that backward) below which a pass runs inline, not worth a thread hand-off.</summary>
    private const long ParallelWork = 1 << 20;

    public static bool Supports(int headDim) => headDim == Hd && Vector512.IsHardwareAccelerated && !ComputeContext.Current.Portable;

    /// <summary>q, o [S·T × Hq·32], k, v [S·T × Hkv·32], lse [S][Hq × T] for S sequences of T rows each.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int sequences, int T, int numHeads, int numKvHeads, KeyVisibility[] masks, bool[]? activeRows = null)
    {
        int S = sequences, Hq = numHeads, Hkv = numKvHeads, Tp = Pad(T);
        float scale2 = Log2E / MathF.Sqrt(Hd);
        CheckActive(activeRows, S, T);
        if (Local(S, T, Hkv))
        {
            ForwardLocal(q, k, v, o, lse, S, T, Hq, Hkv, masks, activeRows);
            return;
        }
        var buf = _buffers ??= new Buffers();
        float* kh = buf.K.Get((long)S * Hkv * Tp * Hd + Slack), vh = buf.V.Get((long)S * Hkv * Tp * Hd + Slack);
        float* qt = buf.QT.Get((long)S * Hq * Tp * Hd);
        fixed (float* pq = q, pk = k, pv = v, po = o, plse = lse)
        {
            float* gq = pq, gk = pk, gv = pv, gkh = kh, gvh = vh, gqt = qt;
            ComputeContext.Current.For(S * (Hkv + Hq), (long)S * T * Hq * Hd >= 1 << 16, item =>
            {
                int b = item / (Hkv + Hq), x = item % (Hkv + Hq);
                if (x < Hkv)
                {
                    long dst = ((long)b * Hkv + x) * Tp * Hd;
                    GatherRows(gk + (long)b * T * Hkv * Hd + x * Hd, Hkv * Hd, T, Tp, gkh + dst);
                    GatherRows(gv + (long)b * T * Hkv * Hd + x * Hd, Hkv * Hd, T, Tp, gvh + dst);
                }
                else
                    Panels32.Gather(gq + (long)b * T * Hq * Hd + (x - Hkv) * Hd, Hq * Hd, T, Tp, scale2, gqt + ((long)b * Hq + x - Hkv) * Tp * Hd);
            });
            int rowBlocks = (T + Br - 1) / Br, perBlock = S * Hq, items = rowBlocks * perBlock;
            float* cq = qt, ck = kh, cv = vh, co = po, cl = plse;
            WorkQueue.Run(items, (long)T * T * S * Hq * Hd >= ParallelWork, (worker, item) =>
            {
                // most expensive (last) row blocks first
                int rb = rowBlocks - 1 - item / perBlock, rest = item % perBlock, b = rest / Hq, h = rest % Hq, g = h / (Hq / Hkv);
                if (activeRows is not null && !activeRows[b * rowBlocks + rb]) return;
                ForwardBlock(cq + ((long)b * Hq + h) * Tp * Hd, ck + ((long)b * Hkv + g) * Tp * Hd, cv + ((long)b * Hkv + g) * Tp * Hd,
                    co + (long)b * T * Hq * Hd + h * Hd, Hq * Hd, cl + ((long)b * Hq + h) * T, T, rb * Br, masks[h]);
            });
        }
    }

    /// <summary>Short sequences, many of them: one work unit per (sequence, KV head) that gathers its own keys,
    /// values and query panels into this thread's buffers (they stay in L2) and computes every row block.</summary>
    private static void ForwardLocal(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int S, int T, int Hq, int Hkv, KeyVisibility[] masks, bool[]? activeRows)
    {
        int Tp = Pad(T), group = Hq / Hkv, rowBlocks = (T + Br - 1) / Br;
        float scale2 = Log2E / MathF.Sqrt(Hd);
        fixed (float* pq = q, pk = k, pv = v, po = o, plse = lse)
        {
            float* cq = pq, ck = pk, cv = pv, co = po, cl = plse;
            WorkQueue.Run(S * Hkv, (long)T * T * S * Hq * Hd >= ParallelWork, (_, unit) =>
            {
                int b = unit / Hkv, g = unit % Hkv;
                float* kh = LocalBuffer(3 * Tp * Hd + Slack), vh = kh + Tp * Hd + Slack, qt = vh + Tp * Hd;
                GatherRows(ck + (long)b * T * Hkv * Hd + g * Hd, Hkv * Hd, T, Tp, kh);
                GatherRows(cv + (long)b * T * Hkv * Hd + g * Hd, Hkv * Hd, T, Tp, vh);
                for (int h = g * group; h < (g + 1) * group; h++)
                {
                    Panels32.Gather(cq + (long)b * T * Hq * Hd + h * Hd, Hq * Hd, T, Tp, scale2, qt);
                    for (int rb = rowBlocks - 1; rb >= 0; rb--)
                        if (activeRows is null || activeRows[b * rowBlocks + rb])
                            ForwardBlock(qt, kh, vh, co + (long)b * T * Hq * Hd + h * Hd, Hq * Hd, cl + ((long)b * Hq + h) * T, T, rb * Br, masks[h]);
                }
            });
        }
    }

    /// <summary>Whether work units gather their own inputs (<see cref="ForwardLocal"/>, <see cref="BackwardLocal"/>):
    /// sequences short enough for one (sequence, KV head)'s buffers to stay in L2, and at least 16 such units.
    /// Decided by the shape alone (never by the thread count), like everything that fixes a summation order.</summary>
    private static bool Local(int S, int T, int Hkv) => T <= 512 && S * Hkv >= 16;

    /// <summary>dO [S·T × Hq·32] → dq, dk, dv += (layouts of q, k, v); = instead of += when
    /// <paramref name="accumulate"/> is false. lse as saved by <see cref="Forward"/>.</summary>
    public static void Backward(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int sequences, int T, int numHeads, int numKvHeads, KeyVisibility[] masks, bool accumulate = true, bool[]? activeRows = null)
    {
        int S = sequences, Hq = numHeads, Hkv = numKvHeads, Tp = Pad(T), group = Hq / Hkv;
        int keyBlocks = (T + Bc - 1) / Bc;
        CheckActive(activeRows, S, T);
        if (Local(S, T, Hkv))
        {
            BackwardLocal(dO, q, k, v, o, lse, dq, dk, dv, S, T, Hq, Hkv, masks, accumulate, activeRows);
            return;
        }
        int G = Math.Clamp((16 + S * Hkv - 1) / (S * Hkv), 1, keyBlocks);   // dQ groups: ≥ 16 units of work
        var buf = _buffers ??= new Buffers();
        long kvSize = (long)S * Hkv * Tp * Hd, qSize = (long)S * Hq * Tp * Hd;
        float* kh = buf.K.Get(kvSize + Slack), vh = buf.V.Get(kvSize + Slack);
        float* qt = buf.QT.Get(qSize), qn = buf.Q.Get(qSize), don = buf.DO.Get(qSize), dot = buf.DOT.Get(qSize);
        float* lse2 = buf.Lse2.Get((long)S * Hq * Tp), dd = buf.D.Get((long)S * Hq * Tp);
        float* dkh = buf.DK.Get(kvSize), dvh = buf.DV.Get(kvSize);
        float* dqg = buf.DQ.Get(qSize * G);
        float scale = 1f / MathF.Sqrt(Hd), scale2 = Log2E * scale;
        fixed (float* pdo = dO, pq = q, pk = k, pv = v, po = o, plse = lse, pdq = dq, pdk = dk, pdv = dv)
        {
            bool parallel = (long)S * T * Hq * Hd >= 1 << 16;
            float* gq = pq, gk = pk, gv = pv, gdo = pdo, go = po, gl = plse;
            float* gkh = kh, gvh = vh, gqt = qt, gqn = qn, gdon = don, gdot = dot, gl2 = lse2, gdd = dd, gdq = dqg;
            ComputeContext.Current.For(S * (Hkv + Hq), parallel, item =>
            {
                int b = item / (Hkv + Hq), x = item % (Hkv + Hq);
                if (x < Hkv)
                {
                    long dst = ((long)b * Hkv + x) * Tp * Hd;
                    GatherRows(gk + (long)b * T * Hkv * Hd + x * Hd, Hkv * Hd, T, Tp, gkh + dst);
                    GatherRows(gv + (long)b * T * Hkv * Hd + x * Hd, Hkv * Hd, T, Tp, gvh + dst);
                    return;
                }
                int h = x - Hkv;
                long src = (long)b * T * Hq * Hd + h * Hd, hd = ((long)b * Hq + h) * Tp * Hd, row = ((long)b * Hq + h) * Tp;
                PrepHead(gq + src, gdo + src, go + src, gl + ((long)b * Hq + h) * T, Hq * Hd, T, Tp, scale2,
                    gqt + hd, gqn + hd, gdon + hd, gdot + hd, gl2 + row, gdd + row);
                for (int grp = 0; grp < G; grp++) new Span<float>(gdq + grp * qSize + hd, Tp * Hd).Clear();
            });
            int units = S * Hkv * G;
            float* ck = kh, cv = vh, cqt = qt, cqn = qn, cdon = don, cdot = dot, cl2 = lse2, cdd = dd, cdk = dkh, cdv = dvh, cdq = dqg;
            WorkQueue.Run(units, 2L * T * T * S * Hq * Hd >= ParallelWork, (_, unit) =>
            {
                int grp = unit % G, b = unit / G / Hkv, g = unit / G % Hkv;
                bool[]? act = activeRows; int actOff = b * keyBlocks;
                // this group's key blocks (dealt round-robin, so every group gets long and short ones), in order
                for (int kb = grp; kb < keyBlocks; kb += G)
                {
                    long kv = ((long)b * Hkv + g) * Tp * Hd + (long)kb * Bc * Hd;
                    for (int h = g * group; h < (g + 1) * group; h++)
                    {
                        long hq = ((long)b * Hq + h) * Tp;
                        BackwardBlock(ck + kv, cv + kv, cqt + hq * Hd, cqn + hq * Hd, cdon + hq * Hd, cdot + hq * Hd, cl2 + hq, cdd + hq,
                            cdk + kv, cdv + kv, cdq + grp * qSize + hq * Hd, T, kb * Bc, masks[h], scale, first: h == g * group, act, actOff);
                    }
                }
            });
            // dq (+)= Σ_groups (in order), dk (+)= dK, dv (+)= dV, back to the interleaved layouts
            float* sdq = pdq, sdk = pdk, sdv = pdv;
            ComputeContext.Current.For(S * (Hkv + Hq), parallel, item =>
            {
                int b = item / (Hkv + Hq), x = item % (Hkv + Hq);
                if (x < Hkv)
                {
                    long src = ((long)b * Hkv + x) * Tp * Hd;
                    ScatterRows(cdk + src, sdk + (long)b * T * Hkv * Hd + x * Hd, Hkv * Hd, T, accumulate);
                    ScatterRows(cdv + src, sdv + (long)b * T * Hkv * Hd + x * Hd, Hkv * Hd, T, accumulate);
                    return;
                }
                int h = x - Hkv;
                for (int grp = 0; grp < G; grp++)
                    ScatterRows(cdq + grp * qSize + ((long)b * Hq + h) * Tp * Hd, sdq + (long)b * T * Hq * Hd + h * Hd, Hq * Hd, T, accumulate || grp > 0);
            });
        }
    }

    /// <summary>The backward of <see cref="ForwardLocal"/>'s shapes: a unit per (sequence, KV head) gathers into this
    /// thread's buffers, accumulates dK, dV and each head's dQ there (summed in the same order as the global
    /// path) and writes them out itself.</summary>
    private static void BackwardLocal(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int S, int T, int Hq, int Hkv, KeyVisibility[] masks, bool accumulate, bool[]? activeRows)
    {
        int Tp = Pad(T), group = Hq / Hkv, keyBlocks = (T + Bc - 1) / Bc, th = Tp * Hd;
        float scale = 1f / MathF.Sqrt(Hd), scale2 = Log2E * scale;
        fixed (float* pdo = dO, pq = q, pk = k, pv = v, po = o, plse = lse, pdq = dq, pdk = dk, pdv = dv)
        {
            float* cdo = pdo, cq = pq, ck = pk, cv = pv, co = po, cl = plse, cdq = pdq, cdk = pdk, cdv = pdv;
            WorkQueue.Run(S * Hkv, 2L * T * T * S * Hq * Hd >= ParallelWork, (_, unit) =>
            {
                int b = unit / Hkv, g = unit % Hkv;
                float* kh = LocalBuffer(9 * th + 2 * Tp + Slack), vh = kh + th + Slack, qt = vh + th, qn = qt + th, don = qn + th, dot = don + th;
                float* dkh = dot + th, dvh = dkh + th, dqh = dvh + th, l2 = dqh + th, dd = l2 + Tp;
                long kvCol = (long)b * T * Hkv * Hd + g * Hd;
                GatherRows(ck + kvCol, Hkv * Hd, T, Tp, kh);
                GatherRows(cv + kvCol, Hkv * Hd, T, Tp, vh);
                new Span<float>(dkh, 2 * th).Clear();
                for (int h = g * group; h < (g + 1) * group; h++)
                {
                    long src = (long)b * T * Hq * Hd + h * Hd;
                    PrepHead(cq + src, cdo + src, co + src, cl + ((long)b * Hq + h) * T, Hq * Hd, T, Tp, scale2, qt, qn, don, dot, l2, dd);
                    new Span<float>(dqh, th).Clear();
                    for (int kb = 0; kb < keyBlocks; kb++)
                        BackwardBlock(kh + kb * Bc * Hd, vh + kb * Bc * Hd, qt, qn, don, dot, l2, dd, dkh + kb * Bc * Hd, dvh + kb * Bc * Hd, dqh,
                            T, kb * Bc, masks[h], scale, first: false, activeRows, b * keyBlocks);
                    ScatterRows(dqh, cdq + src, Hq * Hd, T, accumulate);
                }
                ScatterRows(dkh, cdk + kvCol, Hkv * Hd, T, accumulate);
                ScatterRows(dvh, cdv + kvCol, Hkv * Hd, T, accumulate);
            });
        }
    }

    /// <summary>One head's backward inputs from q, dO, o (at the head's first column, row stride ld) and its lse:
    /// Qᵀ panels × scale₂, Q rows, dO rows, dOᵀ panels, lse·log₂e and D = dO·o per row, zero-padded to Tp rows.</summary>
    private static void PrepHead(float* q, float* dO, float* o, float* lse, int ld, int T, int Tp, float scale2,
        float* qt, float* qn, float* don, float* dot, float* l2, float* d)
    {
        Panels32.Gather(q, ld, T, Tp, scale2, qt);
        GatherRows(q, ld, T, Tp, qn);
        GatherRows(dO, ld, T, Tp, don);
        Panels32.Gather(dO, ld, T, Tp, 1f, dot);
        for (int t = 0; t < T; t++)
        {
            l2[t] = lse[t] * Log2E;
            float* a = dO + (long)t * ld, c = o + (long)t * ld;
            d[t] = Vector512.Sum(Vector512.Load(a) * Vector512.Load(c) + Vector512.Load(a + 16) * Vector512.Load(c + 16));
        }
        for (int t = T; t < Tp; t++) { l2[t] = 0; d[t] = 0; }
    }

    // ---------------------------------------------------------------- forward

    /// <summary>Rows [r0, r0 + 64) of one query head: online softmax over the visible key blocks.</summary>
    private static void ForwardBlock(float* qt, float* kh, float* vh, float* o, int ldo, float* lse, int T, int r0, KeyVisibility mask)
    {
        float* s = Tile(), oacc = s + Bc * Br, m = oacc + Br * Hd, l = m + Br, cmax = l + Br, corr = cmax + Br;
        int r1 = Math.Min(r0 + Br, T), panels = (r1 - r0 + 31) / 32, rows = panels * 32;
        for (int r = 0; r < rows; r += 16)
        {
            Vector512.Create(-1e30f).Store(m + r);     // finite: exp2(m_old − m_new) stays defined before any key is seen
            Vector512<float>.Zero.Store(l + r);
        }
        new Span<float>(oacc, rows * Hd).Clear();
        int segs = Segments(mask, r0, r1, out int s0, out int e0, out int s1, out int e1);
        for (int sg = 0; sg < segs; sg++)
        {
            int start = sg == 0 ? s0 : s1, end = sg == 0 ? e0 : e1;
            for (int c0 = start; c0 < end; c0 += Bc)
            {
                int nk8 = (Math.Min(Bc, end - c0) + MR - 1) & ~(MR - 1);
                for (int p = 0; p < panels; p++)
                {
                    var mx0 = Vector512.Create(float.NegativeInfinity);
                    var mx1 = mx0;
                    for (int j = 0; j < nk8; j += MR)
                    {
                        int vis = Visibility(mask, c0 + j, r0 + 32 * p, T, end);
                        float* st = s + j * Br + 32 * p;
                        if (vis == 0)
                        {
                            for (int x = 0; x < MR; x++) { Vector512.Create(float.NegativeInfinity).Store(st + x * Br); Vector512.Create(float.NegativeInfinity).Store(st + x * Br + 16); }
                            continue;
                        }
                        ScoresForward(kh + (long)(c0 + j) * Hd, qt + (long)(r0 + 32 * p) * Hd, st, vis, mask, c0 + j, r0 + 32 * p, T, end, ref mx0, ref mx1);
                    }
                    mx0.Store(cmax + 32 * p);
                    mx1.Store(cmax + 32 * p + 16);
                }
                // online softmax: m' = max(m, block max), corr = 2^(m − m'), l = l·corr + Σ p, p = 2^(s − m')
                for (int r = 0; r < rows; r += 16)
                {
                    var mOld = Vector512.Load(m + r);
                    var mNew = Vector512.Max(mOld, Vector512.Load(cmax + r));
                    var cr = VectorMath.Exp2(mOld - mNew);
                    cr.Store(corr + r);
                    mNew.Store(m + r);
                    var sum = Vector512<float>.Zero;
                    float* col = s + r;
                    // keys after these 16 rows are masked for all of them: never exponentiated nor read
                    int keys = Math.Clamp(r0 + r + 16 - c0, 0, nk8);
                    for (int j = 0; j < keys; j++)
                    {
                        var pj = VectorMath.Exp2(Vector512.Load(col + j * Br) - mNew);
                        pj.Store(col + j * Br);
                        sum += pj;
                    }
                    (Vector512.Load(l + r) * cr + sum).Store(l + r);
                }
                // O = O·corr + P·V, over the keys rows r … r+7 may see (later keys have p = 0 exactly)
                for (int r = 0; r < rows; r += MR)
                    TileTN(s + r, Br, vh + (long)c0 * Hd, Math.Clamp(r0 + r + MR - c0, 0, nk8), oacc + r * Hd, corr + r);
            }
        }
        for (int r = 0; r < r1 - r0; r++)
        {
            float sum = l[r];
            var inv = Vector512.Create(1f / sum);
            float* dst = o + (long)(r0 + r) * ldo;
            (Vector512.Load(oacc + r * Hd) * inv).Store(dst);
            (Vector512.Load(oacc + r * Hd + 16) * inv).Store(dst + 16);
            lse[r0 + r] = (m[r] + MathF.Log2(sum)) * Ln2;
        }
    }

    /// <summary>Scores of 8 keys × 32 query rows (base 2, −∞ where masked) into s (row stride Br);
    /// the column maxima are folded into mx0/mx1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresForward(float* kr, float* qt, float* s, int vis, KeyVisibility mask, int j0, int i0, int T, int keyEnd,
        ref Vector512<float> mx0, ref Vector512<float> mx1)
    {
        Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default,
                         a40 = default, a41 = default, a50 = default, a51 = default, a60 = default, a61 = default, a70 = default, a71 = default;
        float* kr1 = kr + Hd, kr2 = kr + 2 * Hd, kr3 = kr + 3 * Hd, kr4 = kr + 4 * Hd, kr5 = kr + 5 * Hd, kr6 = kr + 6 * Hd, kr7 = kr + 7 * Hd;
        for (int e = 0; e < Hd; e++)
        {
            var b0 = Vector512.Load(qt + e * 32);
            var b1 = Vector512.Load(qt + e * 32 + 16);
            var x = Vector512.Create(kr[e]); a00 = Vector512.FusedMultiplyAdd(x, b0, a00); a01 = Vector512.FusedMultiplyAdd(x, b1, a01);
            x = Vector512.Create(kr1[e]); a10 = Vector512.FusedMultiplyAdd(x, b0, a10); a11 = Vector512.FusedMultiplyAdd(x, b1, a11);
            x = Vector512.Create(kr2[e]); a20 = Vector512.FusedMultiplyAdd(x, b0, a20); a21 = Vector512.FusedMultiplyAdd(x, b1, a21);
            x = Vector512.Create(kr3[e]); a30 = Vector512.FusedMultiplyAdd(x, b0, a30); a31 = Vector512.FusedMultiplyAdd(x, b1, a31);
            x = Vector512.Create(kr4[e]); a40 = Vector512.FusedMultiplyAdd(x, b0, a40); a41 = Vector512.FusedMultiplyAdd(x, b1, a41);
            x = Vector512.Create(kr5[e]); a50 = Vector512.FusedMultiplyAdd(x, b0, a50); a51 = Vector512.FusedMultiplyAdd(x, b1, a51);
            x = Vector512.Create(kr6[e]); a60 = Vector512.FusedMultiplyAdd(x, b0, a60); a61 = Vector512.FusedMultiplyAdd(x, b1, a61);
            x = Vector512.Create(kr7[e]); a70 = Vector512.FusedMultiplyAdd(x, b0, a70); a71 = Vector512.FusedMultiplyAdd(x, b1, a71);
        }
        if (vis == 1)
        {
            var ninf = Vector512.Create(float.NegativeInfinity);
            var i0v = Vector512.Create(i0) + Iota; var i1v = i0v + Vector512.Create(16);
            a00 = Mask(a00, j0, i0v, mask, T, keyEnd, ninf); a01 = Mask(a01, j0, i1v, mask, T, keyEnd, ninf);
            a10 = Mask(a10, j0 + 1, i0v, mask, T, keyEnd, ninf); a11 = Mask(a11, j0 + 1, i1v, mask, T, keyEnd, ninf);
            a20 = Mask(a20, j0 + 2, i0v, mask, T, keyEnd, ninf); a21 = Mask(a21, j0 + 2, i1v, mask, T, keyEnd, ninf);
            a30 = Mask(a30, j0 + 3, i0v, mask, T, keyEnd, ninf); a31 = Mask(a31, j0 + 3, i1v, mask, T, keyEnd, ninf);
            a40 = Mask(a40, j0 + 4, i0v, mask, T, keyEnd, ninf); a41 = Mask(a41, j0 + 4, i1v, mask, T, keyEnd, ninf);
            a50 = Mask(a50, j0 + 5, i0v, mask, T, keyEnd, ninf); a51 = Mask(a51, j0 + 5, i1v, mask, T, keyEnd, ninf);
            a60 = Mask(a60, j0 + 6, i0v, mask, T, keyEnd, ninf); a61 = Mask(a61, j0 + 6, i1v, mask, T, keyEnd, ninf);
            a70 = Mask(a70, j0 + 7, i0v, mask, T, keyEnd, ninf); a71 = Mask(a71, j0 + 7, i1v, mask, T, keyEnd, ninf);
        }
        a00.Store(s); a01.Store(s + 16);
        a10.Store(s + Br); a11.Store(s + Br + 16);
        a20.Store(s + 2 * Br); a21.Store(s + 2 * Br + 16);
        a30.Store(s + 3 * Br); a31.Store(s + 3 * Br + 16);
        a40.Store(s + 4 * Br); a41.Store(s + 4 * Br + 16);
        a50.Store(s + 5 * Br); a51.Store(s + 5 * Br + 16);
        a60.Store(s + 6 * Br); a61.Store(s + 6 * Br + 16);
        a70.Store(s + 7 * Br); a71.Store(s + 7 * Br + 16);
        mx0 = Vector512.Max(mx0, Vector512.Max(Vector512.Max(Vector512.Max(a00, a10), Vector512.Max(a20, a30)), Vector512.Max(Vector512.Max(a40, a50), Vector512.Max(a60, a70))));
        mx1 = Vector512.Max(mx1, Vector512.Max(Vector512.Max(Vector512.Max(a01, a11), Vector512.Max(a21, a31)), Vector512.Max(Vector512.Max(a41, a51), Vector512.Max(a61, a71))));
    }

    // ---------------------------------------------------------------- backward

    /// <summary>Keys [c0, c0 + 64) of one KV head against the rows of one query head that see them:
    /// dK, dV (this block's rows, zeroed when <paramref name="first"/>) and the worker's dQ accumulate.</summary>
    private static void BackwardBlock(float* kh, float* vh, float* qt, float* qn, float* don, float* dot, float* lse2, float* dd,
        float* dk, float* dv, float* dq, int T, int c0, KeyVisibility mask, float scale, bool first, bool[]? activeRows, int activeOffset)
    {
        float* p = Tile(), ds = p + Bc * Br;
        int nk8 = (Math.Min(Bc, T - c0) + MR - 1) & ~(MR - 1);
        if (first)
        {
            new Span<float>(dk, Bc * Hd).Clear();
            new Span<float>(dv, Bc * Hd).Clear();
        }
        // rows that may see a key of the block: all later rows, or up to the window of the block's last key
        long lastSeen = mask.IsFull || c0 < mask.SinkEnd ? T : Math.Min(T, mask.WindowEnd(c0 + nk8 - 1));
        int rowEnd = (int)lastSeen;
        for (int r0 = c0 & ~31; r0 < rowEnd; r0 += Br)
        {
            if (activeRows is not null && !activeRows[activeOffset + r0 / Br]) continue;   // dO = 0 there: all products are 0
            int panels = (Math.Min(Br, rowEnd - r0) + 31) / 32, rows = panels * 32;
            bool any = false;
            for (int pn = 0; pn < panels; pn++)
                for (int j = 0; j < nk8; j += MR)
                {
                    int i0 = r0 + 32 * pn, vis = Visibility(mask, c0 + j, i0, T, T);
                    float* pt = p + j * Br + 32 * pn, dst = ds + j * Br + 32 * pn;
                    if (vis == 0)
                    {
                        for (int x = 0; x < MR; x++)
                        {
                            Vector512<float>.Zero.Store(pt + x * Br); Vector512<float>.Zero.Store(pt + x * Br + 16);
                            Vector512<float>.Zero.Store(dst + x * Br); Vector512<float>.Zero.Store(dst + x * Br + 16);
                        }
                        continue;
                    }
                    any = true;
                    ScoresBackward(kh + (long)j * Hd, vh + (long)j * Hd, qt + (long)i0 * Hd, dot + (long)i0 * Hd, lse2 + i0, dd + i0,
                        pt, dst, scale, vis, mask, c0 + j, i0, T);
                }
            if (!any) continue;
            // Causality bounds the products: rows before key j and keys after row i have p = dS = 0 exactly.
            for (int j = 0; j < nk8; j += MR)
            {
                int skip = Math.Clamp(c0 + j - r0, 0, rows);
                TileNT(p + j * Br + skip, Br, don + (long)(r0 + skip) * Hd, rows - skip, dv + j * Hd);   // dV += Pᵀ·dO
                TileNT(ds + j * Br + skip, Br, qn + (long)(r0 + skip) * Hd, rows - skip, dk + j * Hd);   // dK += dSᵀ·Q
            }
            for (int r = 0; r < rows; r += MR)
            {
                int keys = Math.Clamp(r0 + r + MR - c0, 0, nk8);
                if (keys > 0) TileTN(ds + r, Br, kh, keys, dq + (long)(r0 + r) * Hd, null);     // dQ += dS·K
            }
        }
    }

    /// <summary>8 keys × 32 rows: P = 2^(s − lse₂) (0 where masked) and dS = P ∘ (dO·vᵀ − D) · scale, stored
    /// transposed (key rows, stride Br).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresBackward(float* kr, float* vr, float* qt, float* dot, float* lse2, float* dd, float* p, float* ds,
        float scale, int vis, KeyVisibility mask, int j0, int i0, int T)
    {
        Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default,
                         a40 = default, a41 = default, a50 = default, a51 = default, a60 = default, a61 = default, a70 = default, a71 = default;
        float* kr1 = kr + Hd, kr2 = kr + 2 * Hd, kr3 = kr + 3 * Hd, kr4 = kr + 4 * Hd, kr5 = kr + 5 * Hd, kr6 = kr + 6 * Hd, kr7 = kr + 7 * Hd;
        for (int e = 0; e < Hd; e++)
        {
            var b0 = Vector512.Load(qt + e * 32);
            var b1 = Vector512.Load(qt + e * 32 + 16);
            var x = Vector512.Create(kr[e]); a00 = Vector512.FusedMultiplyAdd(x, b0, a00); a01 = Vector512.FusedMultiplyAdd(x, b1, a01);
            x = Vector512.Create(kr1[e]); a10 = Vector512.FusedMultiplyAdd(x, b0, a10); a11 = Vector512.FusedMultiplyAdd(x, b1, a11);
            x = Vector512.Create(kr2[e]); a20 = Vector512.FusedMultiplyAdd(x, b0, a20); a21 = Vector512.FusedMultiplyAdd(x, b1, a21);
            x = Vector512.Create(kr3[e]); a30 = Vector512.FusedMultiplyAdd(x, b0, a30); a31 = Vector512.FusedMultiplyAdd(x, b1, a31);
            x = Vector512.Create(kr4[e]); a40 = Vector512.FusedMultiplyAdd(x, b0, a40); a41 = Vector512.FusedMultiplyAdd(x, b1, a41);
            x = Vector512.Create(kr5[e]); a50 = Vector512.FusedMultiplyAdd(x, b0, a50); a51 = Vector512.FusedMultiplyAdd(x, b1, a51);
            x = Vector512.Create(kr6[e]); a60 = Vector512.FusedMultiplyAdd(x, b0, a60); a61 = Vector512.FusedMultiplyAdd(x, b1, a61);
            x = Vector512.Create(kr7[e]); a70 = Vector512.FusedMultiplyAdd(x, b0, a70); a71 = Vector512.FusedMultiplyAdd(x, b1, a71);
        }
        var l0 = Vector512.Load(lse2); var l1 = Vector512.Load(lse2 + 16);
        a00 = VectorMath.Exp2(a00 - l0); a01 = VectorMath.Exp2(a01 - l1);
        a10 = VectorMath.Exp2(a10 - l0); a11 = VectorMath.Exp2(a11 - l1);
        a20 = VectorMath.Exp2(a20 - l0); a21 = VectorMath.Exp2(a21 - l1);
        a30 = VectorMath.Exp2(a30 - l0); a31 = VectorMath.Exp2(a31 - l1);
        a40 = VectorMath.Exp2(a40 - l0); a41 = VectorMath.Exp2(a41 - l1);
        a50 = VectorMath.Exp2(a50 - l0); a51 = VectorMath.Exp2(a51 - l1);
        a60 = VectorMath.Exp2(a60 - l0); a61 = VectorMath.Exp2(a61 - l1);
        a70 = VectorMath.Exp2(a70 - l0); a71 = VectorMath.Exp2(a71 - l1);
        if (vis == 1)
        {
            var zero = Vector512<float>.Zero;
            var i0v = Vector512.Create(i0) + Iota; var i1v = i0v + Vector512.Create(16);
            a00 = Mask(a00, j0, i0v, mask, T, T, zero); a01 = Mask(a01, j0, i1v, mask, T, T, zero);
            a10 = Mask(a10, j0 + 1, i0v, mask, T, T, zero); a11 = Mask(a11, j0 + 1, i1v, mask, T, T, zero);
            a20 = Mask(a20, j0 + 2, i0v, mask, T, T, zero); a21 = Mask(a21, j0 + 2, i1v, mask, T, T, zero);
            a30 = Mask(a30, j0 + 3, i0v, mask, T, T, zero); a31 = Mask(a31, j0 + 3, i1v, mask, T, T, zero);
            a40 = Mask(a40, j0 + 4, i0v, mask, T, T, zero); a41 = Mask(a41, j0 + 4, i1v, mask, T, T, zero);
            a50 = Mask(a50, j0 + 5, i0v, mask, T, T, zero); a51 = Mask(a51, j0 + 5, i1v, mask, T, T, zero);
            a60 = Mask(a60, j0 + 6, i0v, mask, T, T, zero); a61 = Mask(a61, j0 + 6, i1v, mask, T, T, zero);
            a70 = Mask(a70, j0 + 7, i0v, mask, T, T, zero); a71 = Mask(a71, j0 + 7, i1v, mask, T, T, zero);
        }
        a00.Store(p); a01.Store(p + 16);
        a10.Store(p + Br); a11.Store(p + Br + 16);
        a20.Store(p + 2 * Br); a21.Store(p + 2 * Br + 16);
        a30.Store(p + 3 * Br); a31.Store(p + 3 * Br + 16);
        a40.Store(p + 4 * Br); a41.Store(p + 4 * Br + 16);
        a50.Store(p + 5 * Br); a51.Store(p + 5 * Br + 16);
        a60.Store(p + 6 * Br); a61.Store(p + 6 * Br + 16);
        a70.Store(p + 7 * Br); a71.Store(p + 7 * Br + 16);

        // dPᵀ = V·dOᵀ, then dS = P ∘ (dP − D) · scale
        a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = a40 = a41 = a50 = a51 = a60 = a61 = a70 = a71 = default;
        float* vr1 = vr + Hd, vr2 = vr + 2 * Hd, vr3 = vr + 3 * Hd, vr4 = vr + 4 * Hd, vr5 = vr + 5 * Hd, vr6 = vr + 6 * Hd, vr7 = vr + 7 * Hd;
        for (int e = 0; e < Hd; e++)
        {
            var b0 = Vector512.Load(dot + e * 32);
            var b1 = Vector512.Load(dot + e * 32 + 16);
            var x = Vector512.Create(vr[e]); a00 = Vector512.FusedMultiplyAdd(x, b0, a00); a01 = Vector512.FusedMultiplyAdd(x, b1, a01);
            x = Vector512.Create(vr1[e]); a10 = Vector512.FusedMultiplyAdd(x, b0, a10); a11 = Vector512.FusedMultiplyAdd(x, b1, a11);
            x = Vector512.Create(vr2[e]); a20 = Vector512.FusedMultiplyAdd(x, b0, a20); a21 = Vector512.FusedMultiplyAdd(x, b1, a21);
            x = Vector512.Create(vr3[e]); a30 = Vector512.FusedMultiplyAdd(x, b0, a30); a31 = Vector512.FusedMultiplyAdd(x, b1, a31);
            x = Vector512.Create(vr4[e]); a40 = Vector512.FusedMultiplyAdd(x, b0, a40); a41 = Vector512.FusedMultiplyAdd(x, b1, a41);
            x = Vector512.Create(vr5[e]); a50 = Vector512.FusedMultiplyAdd(x, b0, a50); a51 = Vector512.FusedMultiplyAdd(x, b1, a51);
            x = Vector512.Create(vr6[e]); a60 = Vector512.FusedMultiplyAdd(x, b0, a60); a61 = Vector512.FusedMultiplyAdd(x, b1, a61);
            x = Vector512.Create(vr7[e]); a70 = Vector512.FusedMultiplyAdd(x, b0, a70); a71 = Vector512.FusedMultiplyAdd(x, b1, a71);
        }
        var sc = Vector512.Create(scale);
        var d0 = Vector512.Load(dd) * sc; var d1 = Vector512.Load(dd + 16) * sc;
        // dS = P·(dP·scale − D·scale)
        (Vector512.Load(p) * Vector512.FusedMultiplyAdd(a00, sc, -d0)).Store(ds); (Vector512.Load(p + 16) * Vector512.FusedMultiplyAdd(a01, sc, -d1)).Store(ds + 16);
        (Vector512.Load(p + Br) * Vector512.FusedMultiplyAdd(a10, sc, -d0)).Store(ds + Br); (Vector512.Load(p + Br + 16) * Vector512.FusedMultiplyAdd(a11, sc, -d1)).Store(ds + Br + 16);
        (Vector512.Load(p + 2 * Br) * Vector512.FusedMultiplyAdd(a20, sc, -d0)).Store(ds + 2 * Br); (Vector512.Load(p + 2 * Br + 16) * Vector512.FusedMultiplyAdd(a21, sc, -d1)).Store(ds + 2 * Br + 16);
        (Vector512.Load(p + 3 * Br) * Vector512.FusedMultiplyAdd(a30, sc, -d0)).Store(ds + 3 * Br); (Vector512.Load(p + 3 * Br + 16) * Vector512.FusedMultiplyAdd(a31, sc, -d1)).Store(ds + 3 * Br + 16);
        (Vector512.Load(p + 4 * Br) * Vector512.FusedMultiplyAdd(a40, sc, -d0)).Store(ds + 4 * Br); (Vector512.Load(p + 4 * Br + 16) * Vector512.FusedMultiplyAdd(a41, sc, -d1)).Store(ds + 4 * Br + 16);
        (Vector512.Load(p + 5 * Br) * Vector512.FusedMultiplyAdd(a50, sc, -d0)).Store(ds + 5 * Br); (Vector512.Load(p + 5 * Br + 16) * Vector512.FusedMultiplyAdd(a51, sc, -d1)).Store(ds + 5 * Br + 16);
        (Vector512.Load(p + 6 * Br) * Vector512.FusedMultiplyAdd(a60, sc, -d0)).Store(ds + 6 * Br); (Vector512.Load(p + 6 * Br + 16) * Vector512.FusedMultiplyAdd(a61, sc, -d1)).Store(ds + 6 * Br + 16);
        (Vector512.Load(p + 7 * Br) * Vector512.FusedMultiplyAdd(a70, sc, -d0)).Store(ds + 7 * Br); (Vector512.Load(p + 7 * Br + 16) * Vector512.FusedMultiplyAdd(a71, sc, -d1)).Store(ds + 7 * Br + 16);
    }

    // ---------------------------------------------------------------- shared tiles

    /// <summary>C[8 × 32] += A[8 × k] · B[k × 32]: A rows at stride lda, B rows and C rows at stride 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileNT(float* a, int lda, float* b, int k, float* c)
    {
        Vector512<float> a00 = Vector512.Load(c), a01 = Vector512.Load(c + 16), a10 = Vector512.Load(c + 32), a11 = Vector512.Load(c + 48),
                         a20 = Vector512.Load(c + 64), a21 = Vector512.Load(c + 80), a30 = Vector512.Load(c + 96), a31 = Vector512.Load(c + 112),
                         a40 = Vector512.Load(c + 128), a41 = Vector512.Load(c + 144), a50 = Vector512.Load(c + 160), a51 = Vector512.Load(c + 176),
                         a60 = Vector512.Load(c + 192), a61 = Vector512.Load(c + 208), a70 = Vector512.Load(c + 224), a71 = Vector512.Load(c + 240);
        float* r0 = a, r1 = a + lda, r2 = a + 2 * lda, r3 = a + 3 * lda, r4 = a + 4 * lda, r5 = a + 5 * lda, r6 = a + 6 * lda, r7 = a + 7 * lda;
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector512.Load(b + kk * 32);
            var b1 = Vector512.Load(b + kk * 32 + 16);
            var x = Vector512.Create(r0[kk]); a00 = Vector512.FusedMultiplyAdd(x, b0, a00); a01 = Vector512.FusedMultiplyAdd(x, b1, a01);
            x = Vector512.Create(r1[kk]); a10 = Vector512.FusedMultiplyAdd(x, b0, a10); a11 = Vector512.FusedMultiplyAdd(x, b1, a11);
            x = Vector512.Create(r2[kk]); a20 = Vector512.FusedMultiplyAdd(x, b0, a20); a21 = Vector512.FusedMultiplyAdd(x, b1, a21);
            x = Vector512.Create(r3[kk]); a30 = Vector512.FusedMultiplyAdd(x, b0, a30); a31 = Vector512.FusedMultiplyAdd(x, b1, a31);
            x = Vector512.Create(r4[kk]); a40 = Vector512.FusedMultiplyAdd(x, b0, a40); a41 = Vector512.FusedMultiplyAdd(x, b1, a41);
            x = Vector512.Create(r5[kk]); a50 = Vector512.FusedMultiplyAdd(x, b0, a50); a51 = Vector512.FusedMultiplyAdd(x, b1, a51);
            x = Vector512.Create(r6[kk]); a60 = Vector512.FusedMultiplyAdd(x, b0, a60); a61 = Vector512.FusedMultiplyAdd(x, b1, a61);
            x = Vector512.Create(r7[kk]); a70 = Vector512.FusedMultiplyAdd(x, b0, a70); a71 = Vector512.FusedMultiplyAdd(x, b1, a71);
        }
        a00.Store(c); a01.Store(c + 16); a10.Store(c + 32); a11.Store(c + 48);
        a20.Store(c + 64); a21.Store(c + 80); a30.Store(c + 96); a31.Store(c + 112);
        a40.Store(c + 128); a41.Store(c + 144); a50.Store(c + 160); a51.Store(c + 176);
        a60.Store(c + 192); a61.Store(c + 208); a70.Store(c + 224); a71.Store(c + 240);
    }

    /// <summary>C[8 × 32] = C ∘ rowScale (when given) + Aᵀ·B with A stored transposed: A(r, kk) = a[kk·lda + r];
    /// B rows and C rows at stride 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileTN(float* a, int lda, float* b, int k, float* c, float* rowScale)
    {
        Vector512<float> a00 = Vector512.Load(c), a01 = Vector512.Load(c + 16), a10 = Vector512.Load(c + 32), a11 = Vector512.Load(c + 48),
                         a20 = Vector512.Load(c + 64), a21 = Vector512.Load(c + 80), a30 = Vector512.Load(c + 96), a31 = Vector512.Load(c + 112),
                         a40 = Vector512.Load(c + 128), a41 = Vector512.Load(c + 144), a50 = Vector512.Load(c + 160), a51 = Vector512.Load(c + 176),
                         a60 = Vector512.Load(c + 192), a61 = Vector512.Load(c + 208), a70 = Vector512.Load(c + 224), a71 = Vector512.Load(c + 240);
        if (rowScale != null)
        {
            var x = Vector512.Create(rowScale[0]); a00 *= x; a01 *= x;
            x = Vector512.Create(rowScale[1]); a10 *= x; a11 *= x;
            x = Vector512.Create(rowScale[2]); a20 *= x; a21 *= x;
            x = Vector512.Create(rowScale[3]); a30 *= x; a31 *= x;
            x = Vector512.Create(rowScale[4]); a40 *= x; a41 *= x;
            x = Vector512.Create(rowScale[5]); a50 *= x; a51 *= x;
            x = Vector512.Create(rowScale[6]); a60 *= x; a61 *= x;
            x = Vector512.Create(rowScale[7]); a70 *= x; a71 *= x;
        }
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector512.Load(b + kk * 32);
            var b1 = Vector512.Load(b + kk * 32 + 16);
            float* ak = a + (long)kk * lda;
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

    // ---------------------------------------------------------------- masks

    private static readonly Vector512<int> Iota = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    /// <summary>s where row lanes i see key j (j &lt; keyEnd, j ≤ i &lt; T, and j a sink or i &lt; WindowEnd(j)), else fill.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Mask(Vector512<float> s, int j, Vector512<int> i, KeyVisibility mask, int T, int keyEnd, Vector512<float> fill)
    {
        if (j >= keyEnd) return fill;
        var ok = Vector512.GreaterThanOrEqual(i, Vector512.Create(j)) & Vector512.LessThan(i, Vector512.Create(T));
        if (!mask.IsFull && j >= mask.SinkEnd)
            ok &= Vector512.LessThan(i, Vector512.Create((int)Math.Min(mask.WindowEnd(j), int.MaxValue)));
        return Vector512.ConditionalSelect(ok.AsSingle(), s, fill);
    }

    /// <summary>Keys [j0, j0 + 8) × rows [i0, i0 + 32): 0 = nobody sees anything, 2 = all pairs visible, 1 = mixed.</summary>
    private static int Visibility(KeyVisibility m, int j0, int i0, int T, int keyEnd)
    {
        int jl = j0 + MR - 1, il = i0 + 31;
        if (j0 >= keyEnd || i0 >= T || j0 > il) return 0;
        if (!m.IsFull && j0 >= m.SinkEnd && i0 >= m.WindowEnd(jl)) return 0;
        bool all = jl < keyEnd && jl <= i0 && il < T && (m.IsFull || jl < m.SinkEnd || il < m.WindowEnd(j0));
        return all ? 2 : 1;
    }

    /// <summary>The visible key ranges of rows [r0, r1): one for a full head, sink and window (either may be empty) for a streaming head.</summary>
    private static int Segments(KeyVisibility m, int r0, int r1, out int s0, out int e0, out int s1, out int e1)
    {
        s1 = e1 = 0;
        if (m.IsFull) { s0 = 0; e0 = r1; return 1; }
        int sinkEnd = Math.Min(m.SinkEnd, r1);
        int winStart = (int)Math.Max(sinkEnd, m.WindowStart(r0));
        if (sinkEnd == 0) { s0 = winStart; e0 = r1; return winStart < r1 ? 1 : 0; }
        s0 = 0; e0 = sinkEnd;
        if (winStart >= r1) return 1;
        s1 = winStart; e1 = r1;
        return 2;
    }

    // ---------------------------------------------------------------- layout and scheduling

    /// <summary>Query rows per block: the granularity of <c>activeRows</c>.</summary>
    public const int RowBlockSize = Br;

    /// <summary>Row blocks per sequence of T rows: the length of one sequence's part of <c>activeRows</c>.</summary>
    public static int RowBlocks(int T) => (T + Br - 1) / Br;

    private static void CheckActive(bool[]? activeRows, int S, int T)
    {
        if (activeRows is not null && activeRows.Length < S * RowBlocks(T))
            throw new ArgumentException($"activeRows has {activeRows.Length} flags, need {S * RowBlocks(T)} ({S} sequences × {RowBlocks(T)} blocks of {Br} rows)");
    }

    private static int Pad(int T) => (T + 63) & ~63;
    private const int Slack = MR * Hd;   // a last key tile may read 7 rows past the padded keys

    /// <summary>dst [Tp × 32] = rows of one head (src stride ld), zero-padded from T to Tp.</summary>
    private static void GatherRows(float* src, int ld, int T, int Tp, float* dst)
    {
        for (int t = 0; t < T; t++)
        {
            Vector512.Load(src + (long)t * ld).Store(dst + t * Hd);
            Vector512.Load(src + (long)t * ld + 16).Store(dst + t * Hd + 16);
        }
        new Span<float>(dst + T * Hd, (Tp - T) * Hd).Clear();
    }

    /// <summary>Rows of one head [T × 32] into x [T × ld] at the head's columns: added, or copied when not accumulating.</summary>
    private static void ScatterRows(float* src, float* dst, int ld, int T, bool accumulate)
    {
        for (int t = 0; t < T; t++)
        {
            float* d = dst + (long)t * ld;
            var lo = Vector512.Load(src + t * Hd);
            var hi = Vector512.Load(src + t * Hd + 16);
            if (accumulate) { lo += Vector512.Load(d); hi += Vector512.Load(d + 16); }
            lo.Store(d);
            hi.Store(d + 16);
        }
    }

    [ThreadStatic] private static Buffers? _buffers;
    [ThreadStatic] private static float[]? _tile;
    [ThreadStatic] private static Pinned? _local;

    /// <summary>This thread's buffer for a work unit's gathered inputs (local mode).</summary>
    private static float* LocalBuffer(long n) => (_local ??= new Pinned()).Get(n);

    /// <summary>This thread's score tiles: 2 × [Bc × Br] + O [Br × 32] + 4 × [Br], 64-byte aligned.</summary>
    private static float* Tile()
    {
        _tile ??= GC.AllocateUninitializedArray<float>(2 * Bc * Br + Br * Hd + 4 * Br + 16, pinned: true);
        return Align((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_tile)));
    }

    private static float* Align(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    /// <summary>A pinned, 64-byte aligned float buffer that only grows.</summary>
    private sealed class Pinned
    {
        private float[]? _a;
        public float* Get(long n)
        {
            if (_a is null || _a.Length < n + 16) _a = GC.AllocateUninitializedArray<float>(checked((int)(n + 16)), pinned: true);
            return Align((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_a)));
        }
    }

    /// <summary>The caller's per-head gathered inputs and gradient accumulators, reused across calls.</summary>
    private sealed class Buffers
    {
        public readonly Pinned K = new(), V = new(), QT = new(), Q = new(), DO = new(), DOT = new(), Lse2 = new(), D = new(), DK = new(), DV = new(), DQ = new();
    }
}
