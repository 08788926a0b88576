using System.Reflection;
using System.Runtime.Loader;
using KvNotebooks.Bench;

namespace KvNotebooks.Cli.Commands;

/// <summary>
/// Loads LibTorch's side of <c>kvnb bench --vs-torch</c> (lib/KvNotebooks.Torch) only when asked: the CLI does not
/// reference it, so no other command needs TorchSharp or libtorch. The assembly comes from the host when the host has
/// it (the tests do), else from its build folder beside ours (lib/KvNotebooks.Torch/bin/CONFIG/TFM, or the path in
/// KVNB_TORCH_PEER) in a load context of its own that shares KvNotebooks.dll with the CLI.
/// </summary>
internal static class TorchPeerLoader
{
    private const string AssemblyName = "KvNotebooks.Torch";

    public static ITorchBenchPeer Load()
    {
        var asm = FromHost() ?? FromBuildFolder();
        var type = asm.GetTypes().FirstOrDefault(t => typeof(ITorchBenchPeer).IsAssignableFrom(t) && !t.IsAbstract)
                   ?? throw new InvalidOperationException($"{asm.Location} has no {nameof(ITorchBenchPeer)}");
        return (ITorchBenchPeer)Activator.CreateInstance(type)!;
    }

    private static Assembly? FromHost()
    {
        try { return AssemblyLoadContext.Default.LoadFromAssemblyName(new AssemblyName(AssemblyName)); }
        catch (FileNotFoundException) { return null; }
    }

    /// <summary>lib/KvNotebooks.Torch/bin/CONFIG/TFM/KvNotebooks.Torch.dll for our own lib/KvNotebooks.Cli/bin/CONFIG/TFM.</summary>
    internal static string DefaultPath()
    {
        var ours = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string tfm = ours.Name, config = ours.Parent?.Name ?? "Release";
        var lib = ours.Parent?.Parent?.Parent?.Parent?.FullName ?? ".";
        return Path.Combine(lib, AssemblyName, "bin", config, tfm, AssemblyName + ".dll");
    }

    private static Assembly FromBuildFolder()
    {
        string path = Environment.GetEnvironmentVariable("KVNB_TORCH_PEER") is { Length: > 0 } p ? Path.GetFullPath(p) : DefaultPath();
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"--vs-torch needs LibTorch's side, {path}, which is not built: run `bash scripts/setup.sh` (or " +
                "`dotnet build KvNotebooks.sln -c Release` after it ran once), or point KVNB_TORCH_PEER at KvNotebooks.Torch.dll", path);
        return new PeerContext(path).LoadFromAssemblyPath(path);
    }

    /// <summary>Resolves the peer's own dependencies (TorchSharp, its native libraries) from its deps.json; whatever
    /// the CLI already has (KvNotebooks.dll and its dependencies) comes from the CLI, so the types are the same.</summary>
    private sealed class PeerContext(string path) : AssemblyLoadContext("kvnb-torch-peer")
    {
        private readonly AssemblyDependencyResolver _resolver = new(path);

        protected override Assembly? Load(AssemblyName name)
        {
            try { return Default.LoadFromAssemblyName(name); }
            catch (FileNotFoundException) { }
            return _resolver.ResolveAssemblyToPath(name) is { } p ? LoadFromAssemblyPath(p) : null;
        }

        protected override IntPtr LoadUnmanagedDll(string name) =>
            _resolver.ResolveUnmanagedDllToPath(name) is { } p ? LoadUnmanagedDllFromPath(p) : IntPtr.Zero;
    }
}
