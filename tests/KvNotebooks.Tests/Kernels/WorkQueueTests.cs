using System.Collections.Concurrent;
using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

public class WorkQueueTests
{
    /// <summary>Every item runs once, on a worker index below min(threads, maxWorkers): a caller that sized
    /// per-worker scratch for fewer threads than <see cref="ComputeContext.Threads"/> says passes its scratch count
    /// and is never handed a worker it has no scratch for.</summary>
    [Theory]
    [InlineData(4, int.MaxValue, 4)]
    [InlineData(4, 1, 1)]
    [InlineData(4, 2, 2)]
    [InlineData(1, 3, 1)]
    public void Workers_stay_below_the_thread_count_and_the_callers_cap(int threads, int maxWorkers, int bound)
    {
        using (new ComputeContext(threads).Enter())
        {
            var seen = new ConcurrentBag<(int Worker, int Item)>();
            using var gate = new Barrier(Math.Min(bound, 2)); // two workers in at once when two may run: the second cannot be starved
            WorkQueue.Run(12, parallel: true, (w, i) =>
            {
                seen.Add((w, i));
                if (i < gate.ParticipantCount) gate.SignalAndWait(TimeSpan.FromSeconds(10));
            }, maxWorkers);
            Assert.Equal(Enumerable.Range(0, 12), seen.Select(x => x.Item).Order());
            Assert.All(seen, x => Assert.InRange(x.Worker, 0, bound - 1));
            if (bound > 1) Assert.True(seen.Select(x => x.Worker).Distinct().Count() >= 2, "two workers ran");
        }
    }
}
