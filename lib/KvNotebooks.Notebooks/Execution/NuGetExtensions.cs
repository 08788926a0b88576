using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Events;

namespace KvNotebooks.Notebooks.Execution;

/// <summary>
/// Loads the kernel extensions of packages added with <c>#r "nuget:…"</c>: every public
/// <see cref="IKernelExtension"/> in the package's <c>interactive-extensions/dotnet/*.dll</c>, once per kernel,
/// after the command that added the package — what the <c>dotnet-interactive</c> tool does (its
/// <c>UseNuGetExtensions</c>). The kernel packages leave this to their host. An <c>extension.dib</c> script
/// in that folder is not run.
/// </summary>
internal static class NuGetExtensions
{
    public static CompositeKernel UseNuGetExtensions(this CompositeKernel kernel)
    {
        var added = new ConcurrentQueue<PackageAdded>();
        var loaded = new HashSet<string>(StringComparer.Ordinal);

        kernel.AddMiddleware(async (command, context, next) =>
        {
            await next(command, context);
            while (added.TryDequeue(out var package))
            {
                string dir = Path.Combine(package.PackageReference.PackageRoot, "interactive-extensions", "dotnet");
                if (!Directory.Exists(dir)) continue;
                foreach (string dll in Directory.GetFiles(dir, "*.dll").Order(StringComparer.Ordinal))
                {
                    if (!loaded.Add(AssemblyName.GetAssemblyName(dll).FullName)) continue;
                    var assembly = AssemblyLoadContext.Default.LoadFromAssemblyPath(dll);
                    var types = assembly.ExportedTypes
                        .Where(t => t is { IsAbstract: false, IsInterface: false, IsGenericTypeDefinition: false } && typeof(IKernelExtension).IsAssignableFrom(t))
                        .ToList();
                    foreach (var type in types)
                    {
                        var extension = (IKernelExtension)Activator.CreateInstance(type)!;
                        try
                        {
                            await extension.OnLoadAsync(kernel);
                            context.Publish(new KernelExtensionLoaded(extension, context.Command));
                        }
                        catch (Exception e)
                        {
                            context.Fail(context.Command, e, $"kernel extension {type.FullName} of package {package.PackageReference.PackageName} failed to load: {e.Message}");
                        }
                    }
                }
            }
        });

        var subscription = new PackageObserver(added);
        kernel.RegisterForDisposal(kernel.KernelEvents.Subscribe(subscription));
        return kernel;
    }

    private sealed class PackageObserver(ConcurrentQueue<PackageAdded> queue) : IObserver<KernelEvent>
    {
        public void OnNext(KernelEvent e)
        {
            if (e is PackageAdded { PackageReference.PackageRoot: not null } p) queue.Enqueue(p);
        }
        public void OnCompleted() { }
        public void OnError(Exception error) { }
    }
}
