using System.Runtime.InteropServices;
using KvNotebooks.Bench;

namespace KvNotebooks.Tests.Bench;

public class ProcessMemoryTests
{
    /// <summary>The peak resident set sees memory touched after a reset, and a reset after it is freed forgets it
    /// (native memory, which goes back to the system when freed; the garbage collector may keep its own).</summary>
    [Fact]
    public void The_peak_sees_touched_memory_and_a_reset_forgets_freed_memory()
    {
        if (!OperatingSystem.IsLinux()) return;   // the measure exists on Linux only: elsewhere TryResetPeak is false
        Assert.True(ProcessMemory.TryResetPeak());
        long before = ProcessMemory.PeakResidentBytes()!.Value;
        const long Size = 512L << 20;
        nint p = Marshal.AllocHGlobal((nint)Size);
        try
        {
            for (long i = 0; i < Size; i += 4096) Marshal.WriteByte(p, (int)i, 1);   // touch every page: resident now
            long touched = ProcessMemory.PeakResidentBytes()!.Value;
            Assert.True(touched >= before + Size * 9 / 10, $"peak {touched:N0} after touching {Size:N0} bytes on top of {before:N0}");
        }
        finally { Marshal.FreeHGlobal(p); }
        long peak = ProcessMemory.PeakResidentBytes()!.Value;
        Assert.True(ProcessMemory.TryResetPeak());
        long after = ProcessMemory.PeakResidentBytes()!.Value;
        Assert.True(after < peak - Size / 2, $"peak {after:N0} after the reset, {peak:N0} before it");
    }
}
