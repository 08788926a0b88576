using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;

namespace KvNotebooks.Training.Ops;

/// <summary>h = silu(g) ⊙ u with silu(g) = g·σ(g), element-wise.</summary>
/// <remarks>The scalar loops are the definition (and the portable backward); the AVX-512 path does the
/// same per 16 lanes in one pass (σ through <see cref="VectorMath.Exp2(System.Runtime.Intrinsics.Vector512{float})"/>), the portable forward goes
/// through TensorPrimitives 256 values at a time. Large arrays are split over <see cref="ComputeContext.Threads"/>.</remarks>
public static unsafe class SwiGluOp
{
    private const int Chunk = 1 << 14;

    /// <summary>gate, up [n] → h [n].</summary>
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        int n = h.Length;
        if (gate.Length < n || up.Length < n) throw new ArgumentException("gate and up must be at least as long as h");
        fixed (float* pg = gate, pu = up, ph = h)
        {
            float* g = pg, u = pu, o = ph;
            bool fast = Fast;
            For(n, (i0, len) => ForwardRange(g + i0, u + i0, o + i0, len, fast));
        }
    }

    /// <summary>dh [n] → dgate += dh·u·σ(g)(1 + g(1 − σ(g))), dup += dh·silu(g).</summary>
    public static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dgate, Span<float> dup) =>
        Backward(dh, gate, up, dgate, dup, accumulate: true);

    /// <summary><see cref="Backward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float})"/>,
    /// overwriting dgate and dup instead when <paramref name="accumulate"/> is false (saves zeroing them first).</summary>
    internal static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dgate, Span<float> dup, bool accumulate)
    {
        int n = dh.Length;
        if (gate.Length < n || up.Length < n || dgate.Length < n || dup.Length < n) throw new ArgumentException("SwiGLU backward buffers shorter than dh");
        fixed (float* pd = dh, pg = gate, pu = up, pdg = dgate, pdu = dup)
        {
            float* d = pd, g = pg, u = pu, dg = pdg, du = pdu;
            bool fast = Fast;
            For(n, (i0, len) => BackwardRange(d + i0, g + i0, u + i0, dg + i0, du + i0, len, accumulate, fast));
        }
    }

    /// <summary>Read once per call, on the calling thread, before the chunks fan out.</summary>
    private static bool Fast => Vector512.IsHardwareAccelerated && !ComputeContext.Current.Portable;

    private static void ForwardRange(float* g, float* u, float* h, int n, bool fast)
    {
        int i = fast ? Forward512(g, u, h, n) : ForwardPortable(g, u, h, n);
        for (; i < n; i++) h[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
    }

    private static void BackwardRange(float* dh, float* gate, float* up, float* dgate, float* dup, int n, bool accumulate, bool fast)
    {
        int i = fast ? Backward512(dh, gate, up, dgate, dup, n, accumulate) : 0;
        for (; i < n; i++)
        {
            float g = gate[i], sig = 1f / (1f + MathF.Exp(-g));
            float a = dh[i] * up[i] * sig * (1f + g * (1f - sig)), b = dh[i] * g * sig;
            if (accumulate) { dgate[i] += a; dup[i] += b; }
            else { dgate[i] = a; dup[i] = b; }
        }
    }

    private static int Forward512(float* g, float* u, float* h, int n)
    {
        int i = 0;
        var one = Vector512.Create(1f);
        var minusLog2E = Vector512.Create(-1.4426950408889634f);
        for (; i + 16 <= n; i += 16)
        {
            var x = Vector512.Load(g + i);
            var sig = one / (one + VectorMath.Exp2(x * minusLog2E));
            (x * sig * Vector512.Load(u + i)).Store(h + i);
        }
        return i;
    }

    private static int Backward512(float* dh, float* g, float* u, float* dg, float* du, int n, bool accumulate)
    {
        int i = 0;
        var one = Vector512.Create(1f);
        var minusLog2E = Vector512.Create(-1.4426950408889634f);
        for (; i + 16 <= n; i += 16)
        {
            var x = Vector512.Load(g + i);
            var d = Vector512.Load(dh + i);
            var sig = one / (one + VectorMath.Exp2(x * minusLog2E));
            var a = d * Vector512.Load(u + i) * sig * Vector512.FusedMultiplyAdd(x, one - sig, one);
            var b = d * x * sig;
            if (accumulate) { a += Vector512.Load(dg + i); b += Vector512.Load(du + i); }
            a.Store(dg + i);
            b.Store(du + i);
        }
        return i;
    }

    /// <summary>TensorPrimitives (Vector256/128 where that is what the machine has), 256 values at a time.</summary>
    private static int ForwardPortable(float* g, float* u, float* h, int n)
    {
        Span<float> s = stackalloc float[256];
        int i = 0;
        for (; i + 256 <= n; i += 256)
        {
            var gs = new ReadOnlySpan<float>(g + i, 256);
            TensorPrimitives.Sigmoid(gs, s);
            TensorPrimitives.Multiply(gs, s, s);
            TensorPrimitives.Multiply(s, new ReadOnlySpan<float>(u + i, 256), new Span<float>(h + i, 256));
        }
        return i;
    }

    /// <summary>range(start, length) over [0, n) in chunks, spread over threads when there are several chunks.</summary>
    private static void For(int n, Action<int, int> range)
    {
        int chunks = (n + Chunk - 1) / Chunk;
        if (chunks <= 1 || ComputeContext.Current.Threads <= 1) { range(0, n); return; }
        ComputeContext.Current.For(chunks, true, ch => range(ch * Chunk, Math.Min(Chunk, n - ch * Chunk)));
    }
}
