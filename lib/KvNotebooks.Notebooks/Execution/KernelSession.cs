using System.Text.Json.Nodes;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;
using Microsoft.DotNet.Interactive.PackageManagement;

namespace KvNotebooks.Notebooks.Execution;

/// <summary>
/// One notebook's kernel: the .NET Interactive <see cref="CSharpKernel"/> in a <see cref="CompositeKernel"/>,
/// set up as the <c>dotnet-interactive</c> tool sets it up for VS Code and Jupyter (<c>#r "nuget:…"</c>,
/// <c>#i</c>, the <c>display</c> helper, <c>#!who</c>, <c>#!set</c>/<c>#!share</c>, kernel extensions of
/// NuGet packages, HTML as the default MIME type). Cells are submitted as <see cref="SubmitCode"/>; the
/// kernel's events become nbformat outputs (<see cref="OutputCollector"/>).
/// </summary>
internal sealed class KernelSession : IDisposable
{
    private readonly CompositeKernel _kernel;
    private readonly IDisposable _subscription;
    private readonly OutputCollector _collector;
    private bool _abandoned;

    /// <summary>True after a cell ran past its timeout: the kernel may still be running it.</summary>
    public bool Abandoned => _abandoned;

    public KernelSession(PathScrubber scrubber)
    {
        _collector = new OutputCollector(scrubber);
        var csharp = new CSharpKernel()
            .UseNugetDirective((kernel, packages) =>
            {
                kernel.AddAssemblyReferences(packages.SelectMany(p => p.AssemblyPaths));
                return Task.CompletedTask;
            })
            .UseKernelHelpers()
            .UseWho()
            .UseValueSharing();
        _kernel = new CompositeKernel();
        _kernel.Add(csharp, ["c#", "C#"]);
        _kernel.DefaultKernelName = csharp.Name;
        _kernel.UseImportMagicCommand().UseNuGetExtensions();
        _subscription = _kernel.KernelEvents.Subscribe(new EventObserver(_collector));
    }

    /// <summary>Kernels a cell may name: what this session can run.</summary>
    public IReadOnlyCollection<string> KernelNames =>
        _kernel.ChildKernels.SelectMany(k => k.KernelInfo.Aliases.Append(k.Name)).ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The Formatter as the tool leaves it for a notebook front end (VS Code, Jupyter): values show as
    /// HTML by default, strings as plain text. Formatter state is process-wide: call before each notebook.
    /// </summary>
    public static void ResetFormatting()
    {
        Formatter.ResetToDefault();
        Formatter.DefaultMimeType = HtmlFormatter.MimeType;
        Formatter.SetPreferredMimeTypesFor(typeof(string), PlainTextFormatter.MimeType);
    }

    /// <summary>
    /// Runs one cell on <paramref name="kernelName"/>. Returns its outputs and, when it failed or ran past
    /// <paramref name="timeout"/>, the error output (also the last of the outputs). After a timeout the
    /// session cannot run more cells: .NET cannot stop running code, so the cell is cancelled (code that
    /// observes the kernel's cancellation token stops) and abandoned; the process's exit ends it.
    /// </summary>
    public async Task<(JsonArray Outputs, JsonObject? Error)> RunCellAsync(string code, string kernelName, int executionCount, TimeSpan? timeout)
    {
        if (_abandoned) throw new InvalidOperationException("a cell of this session timed out: the session cannot run more cells");
        _collector.BeginCell(executionCount);
        var command = new SubmitCode(code, kernelName);
        using var cancel = new CancellationTokenSource();
        var send = _kernel.SendAsync(command, cancel.Token);
        if (timeout is { } limit && await Task.WhenAny(send, Task.Delay(limit)) != send)
        {
            _abandoned = true;
            cancel.Cancel();
            string seconds = limit.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
            string why = $"the cell did not finish within {seconds} s (the per-cell timeout: kvnb notebooks run --cell-timeout); it was cancelled and the notebook stops here";
            return _collector.EndCell(Outputs.Error("CellTimeout", why, [why]));
        }
        var result = await send;
        var failed = result.Events.OfType<CommandFailed>().OrderBy(f => f.Command == command ? 0 : 1).FirstOrDefault();
        return _collector.EndCell(failed is null ? null : _collector.ErrorOf(failed));
    }

    /// <summary>The compiler warnings of the cell run last (<see cref="OutputCollector.Warnings"/>).</summary>
    public IReadOnlyList<string> LastWarnings => _collector.Warnings;

    public void Dispose()
    {
        _subscription.Dispose();
        // A kernel whose cell timed out may still be running that cell: do not wait for it.
        if (_abandoned) _ = Task.Run(_kernel.Dispose);
        else _kernel.Dispose();
    }

    private sealed class EventObserver(OutputCollector collector) : IObserver<KernelEvent>
    {
        public void OnNext(KernelEvent e) => collector.Add(e);
        public void OnCompleted() { }
        public void OnError(Exception error) { }
    }
}
