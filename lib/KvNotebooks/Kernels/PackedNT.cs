using System.Runtime.Intrinsics;

namespace KvNotebooks.Kernels;

/// <summary>
/// The fast path of <see cref="Gemm.MatMulNT"/> on AVX-512 and AVX2 (the micro-kernels' twins, <see cref="PanelRows"/>:
/// the same bits): B (stored [n×k]) is packed once per call into
/// panels of 32 columns laid out [k × 32], so a 6-row × 32-column micro-kernel keeps 12 Vector512
/// accumulators in registers and, per step of k, loads two B vectors and broadcasts six A values
/// (12 FMAs for 8 loads). Rows are processed in chunks that stay in L2; chunks are spread over threads.
/// When there are few row chunks for the threads, panels are split between threads as well.
/// <see cref="RunNN"/> (dX = dY·W) packs B straight from its [k×n] layout (row segments of 32, no transpose).
/// <see cref="RunTN"/> (dW = dYᵀ·X, k = all rows) runs k-blocks outermost: each thread owns a set of panels
/// and packs only the current k-block of them (L2-resident) instead of the whole of B, and the micro-kernel
/// reads A [k×m] transposed.
/// </summary>
internal static unsafe class PackedNT
{
    private const int MR = 6, NR = MicroKernel32.NR, RowChunk = 48;
    /// <summary>The k-block: <see cref="RunTN"/> sums each block of KC rows on its own, then adds it to C.</summary>
    internal const int KC = 128;

    [ThreadStatic] private static float[]? _packed;

    /// <summary>C[m×n] (+)= A[m×k] · Bᵀ, B stored [n×k].</summary>
    public static void Run(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate) =>
        Run(a, b, c, m, n, k, accumulate, bIsKByN: false);

    /// <summary>C[m×n] (+)= A[m×k] · B, B stored [k×n].</summary>
    public static void RunNN(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate) =>
        Run(a, b, c, m, n, k, accumulate, bIsKByN: true);

    /// <summary>C[m×n] (+)= Aᵀ · B, A stored [k×m], B stored [k×n].</summary>
    public static void RunTN(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate)
    {
        int panels = (n + NR - 1) / NR;
        bool parallel = (long)m * n * k > 1 << 20 && ComputeContext.Current.Threads > 1;
        int groups = parallel ? Math.Min(panels, 4 * ComputeContext.Current.Threads) : 1;
        bool wide = Simd.Tier == SimdTier.Avx512;
        fixed (float* pa = a, pb = b, pc = c)
        {
            float* ca = pa, cb = pb, cc = pc;
            ComputeContext.Current.For(groups, parallel, g =>
            {
                int p0 = (int)((long)panels * g / groups), p1 = (int)((long)panels * (g + 1) / groups);
                long need = (long)(p1 - p0) * KC * NR + 16;
                var packed = _packed is { } pk && pk.Length >= need ? pk : _packed = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
                fixed (float* praw = packed)
                {
                    float* pp = (float*)(((nint)praw + 63) & ~(nint)63);
                    for (int k0 = 0; k0 < k; k0 += KC)
                    {
                        int kc = Math.Min(KC, k - k0);
                        for (int p = p0; p < p1; p++) PackPanelKByN(cb + (long)k0 * n, pp + (long)(p - p0) * KC * NR, n, kc, p);
                        bool acc = accumulate || k0 > 0;
                        float* ak = ca + (long)k0 * m;   // A(row, kk) at ak[kk·m + row]
                        for (int p = p0; p < p1; p++)
                        {
                            float* panel = pp + (long)(p - p0) * KC * NR;
                            int col = p * NR, cols = Math.Min(NR, n - col);
                            // Groups start at different rows (the order of rows does not change any sum), so that
                            // threads on neighbouring panels do not store into the cache line they share at the same time.
                            int tiles = m / MR, start = (int)((long)tiles * g / groups);
                            for (int t = 0; t < tiles; t++)
                            {
                                int r = (start + t) % tiles * MR;
                                if (wide) MicroKernel32.Kernel6x32T(ak + r, m, kc, panel, cc + (long)r * n + col, n, cols, acc);
                                else MicroKernel32Avx2.Kernel6x32T(ak + r, m, kc, panel, cc + (long)r * n + col, n, cols, acc);
                            }
                            int re = tiles * MR;
                            for (; re + 2 <= m; re += 2)
                                if (wide) MicroKernel32.Kernel2x32(ak + re, 1, m, kc, panel, cc + (long)re * n + col, n, cols, acc);
                                else MicroKernel32Avx2.Kernel2x32(ak + re, 1, m, kc, panel, cc + (long)re * n + col, n, cols, acc);
                            if (re < m)
                                if (wide) MicroKernel32.Kernel1x32(ak + re, m, kc, panel, cc + (long)re * n + col, cols, acc);
                                else MicroKernel32Avx2.Kernel1x32(ak + re, m, kc, panel, cc + (long)re * n + col, cols, acc);
                        }
                    }
                }
            });
        }
    }

    /// <summary>Panel p of B stored [k×n] (k rows from b), zero-padded to 32 columns, into dst [k × 32].</summary>
    private static void PackPanelKByN(float* b, float* dst, int n, int k, int p)
    {
        int col = p * NR, cols = Math.Min(NR, n - col);
        if (cols == NR)
            for (int kk = 0; kk < k; kk++)
            {
                float* src = b + (long)kk * n + col;
                if (Vector512.IsHardwareAccelerated)
                {
                    Vector512.Store(Vector512.Load(src), dst + kk * NR);
                    Vector512.Store(Vector512.Load(src + 16), dst + kk * NR + 16);
                }
                else
                    for (int j = 0; j < NR; j += 8) Vector256.Store(Vector256.Load(src + j), dst + kk * NR + j);
            }
        else
            for (int kk = 0; kk < k; kk++)
            {
                float* src = b + (long)kk * n + col;
                for (int j = 0; j < NR; j++) dst[kk * NR + j] = j < cols ? src[j] : 0f;
            }
    }

    private static void Run(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n, int k, bool accumulate, bool bIsKByN)
    {
        int panels = (n + NR - 1) / NR;
        long need = (long)panels * NR * k + 16; // + room to align the panels to a 64-byte cache line
        var packed = _packed is { } pk && pk.Length >= need ? pk : _packed = GC.AllocateUninitializedArray<float>((int)need, pinned: true);
        fixed (float* pa = a, pb = b, pc = c, praw = packed)
        {
            float* pp = (float*)(((nint)praw + 63) & ~(nint)63);
            if (bIsKByN) PackKByN(pb, pp, n, k, panels);
            else Pack(pb, pp, n, k, panels);
            int chunks = (m + RowChunk - 1) / RowChunk;
            bool parallel = (long)m * n * k > 1 << 20 && ComputeContext.Current.Threads > 1;
            // few row chunks for the threads (a short batch): split the panels too, for balance
            int groups = parallel && chunks < 4 * ComputeContext.Current.Threads ? Math.Min(panels, (4 * ComputeContext.Current.Threads + chunks - 1) / chunks) : 1;
            float* ca = pa, cc = pc, cp = pp;
            var tier = Simd.Tier;
            ComputeContext.Current.For(chunks * groups, parallel, item =>
            {
                int g = item % groups;
                Chunk(tier, ca, cp, cc, m, n, k, item / groups, accumulate, (int)((long)panels * g / groups), (int)((long)panels * (g + 1) / groups));
            });
        }
    }

    /// <summary>Panel p holds columns [32p, 32p + 32) of Bᵀ: element (kk, j) at p·32·k + kk·32 + j (zero-padded).</summary>
    private static void Pack(float* b, float* packed, int n, int k, int panels)
    {
        for (int p = 0; p < panels; p++)
        {
            float* dst = packed + (long)p * NR * k;
            int cols = Math.Min(NR, n - p * NR);
            for (int j = 0; j < NR; j++)
            {
                if (j < cols)
                {
                    float* src = b + (long)(p * NR + j) * k;
                    for (int kk = 0; kk < k; kk++) dst[kk * NR + j] = src[kk];
                }
                else
                    for (int kk = 0; kk < k; kk++) dst[kk * NR + j] = 0f;
            }
        }
    }

    /// <summary>The same panels as <see cref="Pack"/> from B stored [k×n]: each panel row is a 32-wide slice of a B row.</summary>
    private static void PackKByN(float* b, float* packed, int n, int k, int panels)
    {
        for (int p = 0; p < panels; p++) PackPanelKByN(b, packed + (long)p * NR * k, n, k, p);
    }

    private static void Chunk(SimdTier tier, float* a, float* packed, float* c, int m, int n, int k, int chunk, bool accumulate, int p0, int p1)
    {
        int r0 = chunk * RowChunk, r1 = Math.Min(m, r0 + RowChunk);
        // k is cut into blocks of KC so that a panel block (KC × 32 floats = 16 KB) stays in L1.
        for (int k0 = 0; k0 < k; k0 += KC)
        {
            int kc = Math.Min(KC, k - k0);
            bool acc = accumulate || k0 > 0;
            for (int p = p0; p < p1; p++)
            {
                float* panel = packed + (long)p * NR * k + (long)k0 * NR;
                int col = p * NR, cols = Math.Min(NR, n - col);
                PanelRows.Run(tier, a + k0, k, r0, r1, kc, panel, c + col, n, cols, acc);
            }
        }
    }
}
