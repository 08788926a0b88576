using TorchSharp;

namespace KvNotebooks.Torch;

/// <summary>Loads LibTorch once, or fails with a message that says how to fix it (never a skip, never a crash
/// deep inside TorchSharp's type initializer).</summary>
public static class TorchRuntime
{
    private static readonly Lazy<Exception?> Failure = new(() =>
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            using var probe = torch.ones(2, 2).matmul(torch.ones(2, 2));
            return probe.sum().item<float>() == 8f ? null : new InvalidOperationException("a 2×2 matmul gave a wrong sum");
        }
        catch (Exception e) { return e; }
    });

    /// <summary>Throws <see cref="InvalidOperationException"/> with the fix when LibTorch cannot load here.</summary>
    public static void Require()
    {
        if (Failure.Value is not { } e) return;
        var inner = e;
        while (inner.InnerException is not null) inner = inner.InnerException;
        throw new InvalidOperationException(
            "LibTorch (TorchSharp 0.107.0 + libtorch-cpu-linux-x64 2.10.0) could not be loaded: " + inner.Message + "\n" +
            "Fix: run `bash scripts/setup.sh` once (it restores the packages and marks the one symbol libLibTorchSharp.so needs " +
            "from GLIBCXX_3.4.32, std::ios_base_library_init, weak so it loads with Debian 12's libstdc++; see environment.md), " +
            "then build again.", e);
    }

    /// <summary>Runs LibTorch's intra-op work on <paramref name="threads"/> threads (what our kernels get).</summary>
    public static void SetThreads(int threads)
    {
        Require();
        torch.set_num_threads(threads);
    }
}
