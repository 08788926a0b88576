namespace KvNotebooks.Kernels;

/// <summary>Process-wide settings of the compute kernels.</summary>
public static class KernelOptions
{
    private static int _threads = Environment.ProcessorCount;

    /// <summary>Worker threads a kernel may use (1 = single-threaded). Defaults to the core count.</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "threads must be ≥ 1");
    }

    /// <summary>Runs body(0 … count−1) on up to <see cref="Threads"/> threads, or inline when
    /// <paramref name="parallel"/> is false (small work is not worth a thread hand-off).</summary>
    public static void For(int count, bool parallel, Action<int> body)
    {
        if (parallel && Threads > 1 && count > 1)
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Threads }, body);
        else
            for (int i = 0; i < count; i++) body(i);
    }
}
