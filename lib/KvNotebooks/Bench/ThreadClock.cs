using System.Runtime.InteropServices;

namespace KvNotebooks.Bench;

/// <summary>The calling thread's CPU time (Linux <c>CLOCK_THREAD_CPUTIME_ID</c>): single-threaded timings
/// that other processes on the machine do not inflate. <see cref="Available"/> is false elsewhere.</summary>
internal static partial class ThreadClock
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Seconds, Nanoseconds; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec ts);

    public static readonly bool Available = Probe();

    /// <summary>Seconds of CPU time the calling thread has used.</summary>
    public static double Seconds()
    {
        ClockGetTime(ClockThreadCpuTimeId, out var ts);
        return ts.Seconds + ts.Nanoseconds * 1e-9;
    }

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return ClockGetTime(ClockThreadCpuTimeId, out _) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }
}
