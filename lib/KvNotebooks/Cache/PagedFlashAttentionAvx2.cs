using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using KvNotebooks.Kernels;

namespace KvNotebooks.Cache;

/// <summary>
/// The AVX2 + FMA twins of <see cref="PagedFlashAttention"/>'s tile kernels, called by its driver in their place
/// on machines without AVX-512. Every lane (query row) of a tile goes through the same floating-point operations
/// as there — the score as an FMA chain over the 32 dims from −m, the same mask, the same exp2 (the 32-entry table
/// through four vpermps, vscalefps as <see cref="VectorMath.Scale"/>), the same row sums in the same tree, the same
/// lazy-rescale decision over the tile's 32 rows — so P, m, l and O come out with the same bits. Only the register
/// tiling differs, AVX2 having 16 registers of 8 lanes where AVX-512 has 32 of 16: a tile of 8 keys × 32 rows is
/// four passes of 4 keys × 16 rows (each storing its P at once; a refused tile's P is overwritten by
/// <see cref="TileSlow"/>), and O += P·V four passes of 4 rows × 16 dims.
/// </summary>
internal static unsafe class PagedFlashAttentionAvx2
{
    private const int Hd = PagedFlashAttention.Hd, MR = PagedFlashAttention.MR, Br = PagedFlashAttention.Br;

    /// <summary>The twin of <see cref="PagedFlashAttention"/>.TilesFast: tiles from key j up to
    /// <paramref name="keys"/>; returns the first refused tile, or keys.</summary>
    public static int TilesFast(float* kb, float* qt, float* pBlock, float* m, float* l, int j, int keys, int d, bool first)
    {
        var lazy = Vector256.Create(PagedFlashAttention.Lazy);
        if (first && j < keys)
        {
            // the tile of key 0 sets each row's m to its own maximum: raw scores from 0, masked, stored
            float* st = pBlock + j * Br, kr = kb + j * Hd;
            for (int lane = 0; lane < 32; lane += 16)
                for (int x0 = 0; x0 < MR; x0 += 4)
                    Quad(kr, qt, null, st, lane, x0, d + j, exp: false, out _, out _);
            for (int lane = 0; lane < 32; lane += 8)
            {
                var mx = Vector256.Max(Vector256.Max(Vector256.Max(Row(st, 0, lane), Row(st, 1, lane)), Vector256.Max(Row(st, 2, lane), Row(st, 3, lane))),
                                       Vector256.Max(Vector256.Max(Row(st, 4, lane), Row(st, 5, lane)), Vector256.Max(Row(st, 6, lane), Row(st, 7, lane))));
                mx.Store(m + lane);
            }
            var s = stackalloc Vector256<float>[4];
            for (int g = 0; g < 4; g++)
            {
                var mx = Vector256.Load(m + 8 * g);
                var p0 = PExp(st, 0, 8 * g, mx); var p1 = PExp(st, 1, 8 * g, mx); var p2 = PExp(st, 2, 8 * g, mx); var p3 = PExp(st, 3, 8 * g, mx);
                var p4 = PExp(st, 4, 8 * g, mx); var p5 = PExp(st, 5, 8 * g, mx); var p6 = PExp(st, 6, 8 * g, mx); var p7 = PExp(st, 7, 8 * g, mx);
                s[g] = ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7));
            }
            if (!Accept(s, l, lazy)) return j;
            j += MR;
        }
        var sums = stackalloc Vector256<float>[4];
        for (; j < keys; j += MR)
        {
            float* st = pBlock + j * Br, kr = kb + j * Hd;
            for (int lane = 0; lane < 32; lane += 16)
            {
                Quad(kr, qt, m, st, lane, 0, d + j, exp: true, out var lo0, out var hi0);
                Quad(kr, qt, m, st, lane, 4, d + j, exp: true, out var lo1, out var hi1);
                sums[lane / 8] = lo0 + lo1;
                sums[lane / 8 + 1] = hi0 + hi1;
            }
            if (!Accept(sums, l, lazy)) break;
        }
        return j;
    }

    /// <summary>Row x of a tile's stored P (or raw scores), lanes [lane, lane + 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Row(float* st, int x, int lane) => Vector256.Load(st + x * Br + lane);

    /// <summary>P = exp2(raw − max) for row x, lanes [lane, lane + 8), stored over the raw score.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> PExp(float* st, int x, int lane, Vector256<float> mx)
    {
        var p = Exp2(Row(st, x, lane) - mx);
        p.Store(st + x * Br + lane);
        return p;
    }

    /// <summary>The lazy test over the tile's 32 rows; if no row's sum passes it, l += the sums.</summary>
    private static bool Accept(Vector256<float>* s, float* l, Vector256<float> lazy)
    {
        if (Vector256.GreaterThanAny(s[0], lazy) || Vector256.GreaterThanAny(s[1], lazy)
            || Vector256.GreaterThanAny(s[2], lazy) || Vector256.GreaterThanAny(s[3], lazy)) return false;
        for (int g = 0; g < 4; g++) (Vector256.Load(l + 8 * g) + s[g]).Store(l + 8 * g);
        return true;
    }

    /// <summary>
    /// Keys [x0, x0 + 4) of a tile × rows [lane, lane + 16): scores from −m (from 0 when <paramref name="m"/> is null)
    /// by FMAs over the dims, masked on the causal edge (key x is visible to row i where i − dj ≥ x), then, with
    /// <paramref name="exp"/>, exponentiated; stored at st (key row x at st + x·Br). Returns the rows' sums of the four
    /// probabilities, (p0 + p1) + (p2 + p3), for lanes [lane, lane + 8) and [lane + 8, lane + 16).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Quad(float* kr, float* qt, float* m, float* st, int lane, int x0, int dj, bool exp, out Vector256<float> lo, out Vector256<float> hi)
    {
        var n0 = m == null ? Vector256<float>.Zero : -Vector256.Load(m + lane);
        var n1 = m == null ? Vector256<float>.Zero : -Vector256.Load(m + lane + 8);
        Vector256<float> a00 = n0, a01 = n1, a10 = n0, a11 = n1, a20 = n0, a21 = n1, a30 = n0, a31 = n1;
        float* k0 = kr + x0 * Hd, k1 = k0 + Hd, k2 = k1 + Hd, k3 = k2 + Hd, q = qt + lane;
        for (int e = 0; e < Hd; e++)
        {
            var b0 = Vector256.Load(q + e * 32);
            var b1 = Vector256.Load(q + e * 32 + 8);
            var x = Vector256.Create(k0[e]); a00 = Vector256.FusedMultiplyAdd(x, b0, a00); a01 = Vector256.FusedMultiplyAdd(x, b1, a01);
            x = Vector256.Create(k1[e]); a10 = Vector256.FusedMultiplyAdd(x, b0, a10); a11 = Vector256.FusedMultiplyAdd(x, b1, a11);
            x = Vector256.Create(k2[e]); a20 = Vector256.FusedMultiplyAdd(x, b0, a20); a21 = Vector256.FusedMultiplyAdd(x, b1, a21);
            x = Vector256.Create(k3[e]); a30 = Vector256.FusedMultiplyAdd(x, b0, a30); a31 = Vector256.FusedMultiplyAdd(x, b1, a31);
        }
        if (dj > 1 - MR)   // an edge tile: some key is after lane 0's row
        {
            var fill = Vector256.Create(PagedFlashAttention.Fill);
            var i0 = Iota + Vector256.Create(lane - dj);
            var i1 = i0 + Vector256.Create(8);
            a00 = Mask(a00, i0, x0, fill); a01 = Mask(a01, i1, x0, fill);
            a10 = Mask(a10, i0, x0 + 1, fill); a11 = Mask(a11, i1, x0 + 1, fill);
            a20 = Mask(a20, i0, x0 + 2, fill); a21 = Mask(a21, i1, x0 + 2, fill);
            a30 = Mask(a30, i0, x0 + 3, fill); a31 = Mask(a31, i1, x0 + 3, fill);
        }
        if (exp)
        {
            a00 = Exp2(a00); a01 = Exp2(a01); a10 = Exp2(a10); a11 = Exp2(a11);
            a20 = Exp2(a20); a21 = Exp2(a21); a30 = Exp2(a30); a31 = Exp2(a31);
        }
        float* s0 = st + x0 * Br + lane;
        a00.Store(s0); a01.Store(s0 + 8);
        a10.Store(s0 + Br); a11.Store(s0 + Br + 8);
        a20.Store(s0 + 2 * Br); a21.Store(s0 + 2 * Br + 8);
        a30.Store(s0 + 3 * Br); a31.Store(s0 + 3 * Br + 8);
        lo = (a00 + a10) + (a20 + a30);
        hi = (a01 + a11) + (a21 + a31);
    }

    /// <summary>The twin of <see cref="PagedFlashAttention"/>.TileSlow (the exact update of a refused tile), 8 rows at a time.</summary>
    public static void TileSlow(float* kr, float* qt, float* pBlock, int j, float* m, float* l, float* oPanel, int d)
    {
        var sc = stackalloc Vector256<float>[MR];
        var fill = Vector256.Create(PagedFlashAttention.Fill);
        for (int lane = 0; lane < 32; lane += 8)
        {
            var i0 = Iota + Vector256.Create(lane - d);
            var mx = fill;
            for (int x = 0; x < MR; x++)
            {
                var acc = Vector256<float>.Zero;
                for (int e = 0; e < Hd; e++)
                    acc = Vector256.FusedMultiplyAdd(Vector256.Create(kr[x * Hd + e]), Vector256.Load(qt + e * 32 + lane), acc);
                sc[x] = Mask(acc, i0, x, fill);
                mx = Vector256.Max(mx, sc[x]);
            }
            var mOld = Vector256.Load(m + lane);
            var mNew = Vector256.Max(mOld, mx);
            var c = VectorMath.Exp2(mOld - mNew);
            var s = Vector256.Load(l + lane) * c;
            for (int k = 0; k < j; k++) (Vector256.Load(pBlock + k * Br + lane) * c).Store(pBlock + k * Br + lane);
            for (int i = 0; i < 8; i++)
            {
                var ci = Vector256.Create(c.GetElement(i));
                float* row = oPanel + (lane + i) * Hd;
                for (int e = 0; e < Hd; e += 8) (Vector256.Load(row + e) * ci).Store(row + e);
            }
            for (int x = 0; x < MR; x++)
            {
                var p = Exp2(sc[x] - mNew);
                p.Store(pBlock + (j + x) * Br + lane);
                s += p;
            }
            s.Store(l + lane);
            mNew.Store(m + lane);
        }
    }

    /// <summary>The twin of <see cref="PagedFlashAttention"/>.TileTN: C[8 × 32] += A·V (A(r, kk) = a[kk·Br + r]),
    /// as four passes of 4 rows × 16 dims, each element C + its FMA chain over kk in order.</summary>
    public static void TileTN(float* a, float* b, int k, float* c)
    {
        for (int r = 0; r < MR; r += 4)
            for (int e = 0; e < Hd; e += 16)
                TileTN4x16(a + r, b + e, k, c + r * Hd + e);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileTN4x16(float* a, float* b, int k, float* c)
    {
        Vector256<float> a00 = Vector256.Load(c), a01 = Vector256.Load(c + 8), a10 = Vector256.Load(c + Hd), a11 = Vector256.Load(c + Hd + 8),
                         a20 = Vector256.Load(c + 2 * Hd), a21 = Vector256.Load(c + 2 * Hd + 8), a30 = Vector256.Load(c + 3 * Hd), a31 = Vector256.Load(c + 3 * Hd + 8);
        for (int kk = 0; kk < k; kk++)
        {
            var b0 = Vector256.Load(b + kk * Hd);
            var b1 = Vector256.Load(b + kk * Hd + 8);
            float* ak = a + kk * Br;
            var x = Vector256.Create(ak[0]); a00 = Vector256.FusedMultiplyAdd(x, b0, a00); a01 = Vector256.FusedMultiplyAdd(x, b1, a01);
            x = Vector256.Create(ak[1]); a10 = Vector256.FusedMultiplyAdd(x, b0, a10); a11 = Vector256.FusedMultiplyAdd(x, b1, a11);
            x = Vector256.Create(ak[2]); a20 = Vector256.FusedMultiplyAdd(x, b0, a20); a21 = Vector256.FusedMultiplyAdd(x, b1, a21);
            x = Vector256.Create(ak[3]); a30 = Vector256.FusedMultiplyAdd(x, b0, a30); a31 = Vector256.FusedMultiplyAdd(x, b1, a31);
        }
        a00.Store(c); a01.Store(c + 8); a10.Store(c + Hd); a11.Store(c + Hd + 8);
        a20.Store(c + 2 * Hd); a21.Store(c + 2 * Hd + 8); a30.Store(c + 3 * Hd); a31.Store(c + 3 * Hd + 8);
    }

    /// <summary>s where lane (i − d) ≥ x, else fill.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Mask(Vector256<float> s, Vector256<int> laneMinusD, int x, Vector256<float> fill) =>
        Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(laneMinusD, Vector256.Create(x)).AsSingle(), s, fill);

    /// <summary>The twin of <see cref="PagedFlashAttention"/>'s table exp2, op for op: the 32-entry lookup by the low five
    /// bits of t is four 8-entry vpermps blended on bits 3 and 4, vscalefps is <see cref="VectorMath.Scale"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp2(Vector256<float> x)
    {
        var magic = Vector256.Create(393216f);
        var t = x + magic;
        var xr = t - magic;
        var r = x - xr;
        var idx = t.AsInt32();
        var bit3 = Avx2.ShiftLeftLogical(idx, 28).AsSingle();
        var bit4 = Avx2.ShiftLeftLogical(idx, 27).AsSingle();
        var low = Avx.BlendVariable(Avx2.PermuteVar8x32(Table0, idx), Avx2.PermuteVar8x32(Table1, idx), bit3);
        var high = Avx.BlendVariable(Avx2.PermuteVar8x32(Table2, idx), Avx2.PermuteVar8x32(Table3, idx), bit3);
        var table = Avx.BlendVariable(low, high, bit4);
        var q = Vector256.FusedMultiplyAdd(Vector256.Create(PagedFlashAttention.ExpC2), r, Vector256.Create(PagedFlashAttention.ExpC1));
        var p = Vector256.FusedMultiplyAdd(table * r, q, table);
        return VectorMath.Scale(p, xr);
    }

    private static readonly Vector256<float> Table0 = Table(0), Table1 = Table(8), Table2 = Table(16), Table3 = Table(24);

    private static Vector256<float> Table(int first)
    {
        Span<float> t = stackalloc float[8];
        for (int j = 0; j < 8; j++) t[j] = PagedFlashAttention.TableEntry(first + j);
        return Vector256.Create((ReadOnlySpan<float>)t);
    }

    private static readonly Vector256<int> Iota = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
}
