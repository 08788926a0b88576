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
}
