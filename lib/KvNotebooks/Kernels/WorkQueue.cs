namespace KvNotebooks.Kernels;

/// <summary>A shared work counter for kernels whose items differ in cost (e.g. causal attention blocks).</summary>
internal static class WorkQueue
{
    /// <summary>
    /// Runs body(worker, item) for items 0 … count−1, handed out in order to up to <see cref="ComputeContext.Threads"/>
    /// workers (one thread hand-off per call; a worker takes the next item when it is done with one). worker is in
    /// [0, workers) and identifies the thread's own scratch. Inline on the calling thread, worker 0, when
    /// <paramref name="parallel"/> is false (the caller's "not worth a hand-off") or only one worker would run.
    /// <paramref name="maxWorkers"/> caps the workers at the scratch the caller has: <see cref="ComputeContext.Threads"/>
    /// is global and may grow between the caller sizing its scratch and this call.
    /// </summary>
    public static void Run(int count, bool parallel, Action<int, int> body, int maxWorkers = int.MaxValue)
    {
        int workers = Math.Min(Math.Min(ComputeContext.Current.Threads, maxWorkers), count);
        if (workers <= 1 || !parallel)
        {
            for (int i = 0; i < count; i++) body(0, i);
            return;
        }
        int next = -1;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
        {
            for (int i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next)) body(w, i);
        });
    }
}
