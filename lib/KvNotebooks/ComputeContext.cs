using KvNotebooks.Cache;
using KvNotebooks.Kernels;

namespace KvNotebooks;

/// <summary>
/// How much of the machine one piece of work may use: <see cref="Threads"/> worker threads, whether the kernels
/// must take their portable paths instead of the AVX-512 / AVX2 ones (<see cref="Portable"/>, for tests of the dispatch),
/// and the pages of finished KV caches kept for the next cache (<see cref="Pages"/>; fresh memory is slow on these
/// machines). Whoever runs work creates one and hands it to <c>LlamaModel</c>, <c>TrainableLlama</c> (and through
/// the model to every <c>Session</c>). While their methods run it is the ambient context that the static kernels
/// read (<see cref="Current"/>), and the caller's context is back when they return: nothing process-wide is
/// changed, and two pieces of work with different contexts can run side by side (each async flow has its own).
/// </summary>
public sealed class ComputeContext
{
    private static readonly AsyncLocal<ComputeContext?> Ambient = new();
    private static readonly ComputeContext Fallback = new();

    /// <param name="threads">Worker threads a kernel may use (1 = single-threaded; 0 = every core).</param>
    /// <param name="portable">Take the portable (TensorPrimitives / scalar) paths even where AVX-512 or AVX2 is there.</param>
    /// <param name="pageCacheBytes">The most bytes of finished caches' pages <see cref="Pages"/> keeps for later caches.</param>
    public ComputeContext(int threads = 0, bool portable = false, long pageCacheBytes = 1L << 30)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "threads must be ≥ 1 (or 0 for every core)");
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
        Portable = portable;
        Pages = new KvPageRecycler(pageCacheBytes);
    }

    /// <summary>Worker threads a kernel may use (≥ 1).</summary>
    public int Threads { get; }
    /// <summary>Whether kernels take their portable paths (no AVX-512 or AVX2 micro-kernels).</summary>
    public bool Portable { get; }
    /// <summary>Runs the kernels of this tier instead of the machine's (tests: the AVX-512 kernels through .NET's
    /// software Vector512 beside their AVX2 twins). <see cref="Portable"/> still wins.</summary>
    internal SimdTier? ForceTier { get; init; }
    /// <summary>The kernels this context runs: portable, else <see cref="ForceTier"/>, else the machine's best.</summary>
    internal SimdTier Tier => Portable ? SimdTier.Portable : ForceTier ?? Simd.Machine;
    /// <summary>Pages of finished KV caches, kept for the next cache made under this context.</summary>
    public KvPageRecycler Pages { get; }

    /// <summary>The context of the work running on this flow: the one entered last (<see cref="Enter"/>), or, outside
    /// any, every core, AVX-512 where the machine has it.</summary>
    public static ComputeContext Current => Ambient.Value ?? Fallback;

    /// <summary>Makes this the ambient context until the returned scope is disposed (which restores the previous one).</summary>
    public Scope Enter()
    {
        var previous = Ambient.Value;
        Ambient.Value = this;
        return new Scope(previous);
    }

    /// <summary>Runs body(0 … count−1) on up to <see cref="Threads"/> threads, or inline when
    /// <paramref name="parallel"/> is false (small work is not worth a thread hand-off).</summary>
    public void For(int count, bool parallel, Action<int> body)
    {
        if (parallel && Threads > 1 && count > 1)
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Threads }, body);
        else
            for (int i = 0; i < count; i++) body(i);
    }

    public override string ToString() => $"{Threads} thread(s){(Portable ? ", portable kernels" : "")}";

    /// <summary>Restores the context that was ambient before <see cref="Enter"/>.</summary>
    public readonly struct Scope(ComputeContext? previous) : IDisposable
    {
        public void Dispose() => Ambient.Value = previous;
    }
}
