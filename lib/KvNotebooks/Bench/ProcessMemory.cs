namespace KvNotebooks.Bench;

/// <summary>
/// The process's peak resident memory (Linux: VmHWM of /proc/self/status), and a reset of that peak to the current
/// resident set (writing 5 to /proc/self/clear_refs), so that a peak can be read for one piece of work: weights,
/// activations, KV cache, runtime and all. Used per result row (<see cref="Evaluation.EvalRow.PeakRssBytes"/>) and by
/// <c>kvnb bench --vs-torch</c>. Where the kernel offers neither, <see cref="TryResetPeak"/> says so and nothing is measured.
/// </summary>
public static class ProcessMemory
{
    /// <summary>Collects garbage (compacting, so memory the heap no longer needs can go back to the system), then resets
    /// the peak resident set to the current one. False where the peak cannot be reset (not Linux, or no permission).</summary>
    public static bool TryResetPeak()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException) { return false; }
    }

    /// <summary>The peak resident set since the process started or the last <see cref="TryResetPeak"/>, in bytes; null
    /// where /proc/self/status has no VmHWM line.</summary>
    public static long? PeakResidentBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);   // "VmHWM:", "123456", "kB"
                    return parts.Length >= 2 && long.TryParse(parts[1], out long kb) ? kb * 1024 : null;
                }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }
}
