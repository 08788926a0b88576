namespace KvNotebooks.Kernels;

/// <summary>Splits rows into contiguous ranges over <see cref="ComputeContext.Threads"/> threads (one hand-off),
/// or runs them inline when the work is too small to be worth one.</summary>
internal static class RowParallel
{
    /// <summary>Calls body(r0, r1) over ranges covering [0, rows); <paramref name="work"/> (elements touched)
    /// below ~64K runs inline.</summary>
    public static void For(int rows, long work, Action<int, int> body)
    {
        int threads = ComputeContext.Current.Threads;
        if (threads <= 1 || rows < 2 || work < 1 << 16)
        {
            body(0, rows);
            return;
        }
        int parts = Math.Min(rows, threads);
        ComputeContext.Current.For(parts, true, p => body((int)((long)rows * p / parts), (int)((long)rows * (p + 1) / parts)));
    }
}
