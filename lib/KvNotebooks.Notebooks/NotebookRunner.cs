using System.Diagnostics;
using System.Text.Json.Nodes;
using KvNotebooks.Notebooks.Execution;

namespace KvNotebooks.Notebooks;

/// <summary>Settings of a run; every field has a usable default.</summary>
public sealed record RunnerOptions
{
    /// <summary>Repository root: machine paths under it are shown relative to it, plotly.js is looked up under it.
    /// Null: found from the notebook's folder upward (the folder holding KvNotebooks.sln).</summary>
    public string? RepoRoot { get; init; }
    /// <summary>Render plotly figures to PNG with headless chromium (skipped with one notice when unavailable).</summary>
    public bool RenderPng { get; init; } = true;
    /// <summary>Write the executed notebook (in place for .ipynb, as a sibling .ipynb for .dib).</summary>
    public bool WriteNotebook { get; init; } = true;
    /// <summary>Write executed notebooks into this folder (same file name) instead of in place: the notebook still runs
    /// from its own folder, so its relative paths hold (a quick check must not overwrite committed outputs).</summary>
    public string? OutDir { get; init; }
    /// <summary>Write an HTML report: true → next to the notebook, unless <see cref="HtmlDir"/> is set.</summary>
    public bool WriteHtml { get; init; } = true;
    public string? HtmlDir { get; init; }
    /// <summary>Chromium executable; null → env KVNB_CHROMIUM, else chromium / chromium-browser on PATH.</summary>
    public string? ChromiumPath { get; init; }
    /// <summary>plotly.min.js; null → env KVNB_PLOTLY_JS, else node_modules/plotly.js-dist-min/plotly.min.js under the repo root.</summary>
    public string? PlotlyJsPath { get; init; }
    public TimeSpan ChromiumTimeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>A cell still running after this long is cancelled and fails the notebook (null: no limit).
    /// Default 20 minutes: the slowest cell of the shipped notebooks took 400 s on 2 heavily shared cores.</summary>
    public TimeSpan? CellTimeout { get; init; } = DefaultCellTimeout;

    public static readonly TimeSpan DefaultCellTimeout = TimeSpan.FromMinutes(20);
}

/// <summary>Progress of one cell, reported after it ran. Cell numbers are 1-based.</summary>
public sealed record CellProgress(string Notebook, int CellNumber, int CellCount, int CodeCellNumber, int CodeCellCount, double Seconds, bool Ok);

/// <summary>Where a notebook stopped: 1-based cell number counting all cells, and counting code cells only.</summary>
public sealed record NotebookFailure(int CellNumber, int CodeCellNumber, string ErrorName, string Message)
{
    public override string ToString() => $"cell {CellNumber} (code cell {CodeCellNumber}): {ErrorName}: {Message}";
}

/// <summary>What happened to one notebook.</summary>
public sealed record NotebookRunResult(
    string Notebook, string? OutputPath, string? HtmlPath, int Cells, int CodeCells, int CodeCellsRun,
    double Seconds, int Figures, int Pngs, NotebookFailure? Failure)
{
    public bool Ok => Failure is null;
    /// <summary>Compiler warnings, "cell N (code cell K): (line,col): warning CSxxxx: …": the official Jupyter kernel prints
    /// them to stderr, so a notebook with any differs there from here (CI compares the two).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Executes notebooks headlessly on the .NET Interactive C# kernel, in this process: cells in order on one
/// fresh kernel per notebook (like a kernel restart), outputs in nbformat shape, plotly figures to PNG,
/// executed .ipynb and HTML report written. Run all notebooks of a batch in one runner (one process): the
/// compiler warm-up is paid once.
/// </summary>
public sealed class NotebookRunner
{
    private readonly RunnerOptions _options;
    private bool _pngNoticeGiven;
    /// <summary>The kernel's console capture left installed by a timed-out cell (process-wide, like the kernel's).</summary>
    private static (TextWriter Out, TextWriter Error)? s_abandonedCapture;

    public NotebookRunner(RunnerOptions? options = null) => _options = options ?? new RunnerOptions();

    /// <summary>Per-cell progress (called between cells, with the console restored).</summary>
    public event Action<CellProgress>? CellDone;
    /// <summary>Notices for the user (e.g. the one "PNGs skipped" message of a run).</summary>
    public event Action<string>? Notice;

    public NotebookRunResult Run(string path) => RunAsync(path).GetAwaiter().GetResult();

    public async Task<NotebookRunResult> RunAsync(string path)
    {
        var notebook = Notebook.Load(path);
        return await RunAsync(notebook);
    }

    public async Task<NotebookRunResult> RunAsync(Notebook notebook)
    {
        var total = Stopwatch.StartNew();
        string dir = Path.GetDirectoryName(notebook.Path)!;
        string? repoRoot = _options.RepoRoot ?? RepoLocator.FindRoot(dir);
        var scrubber = new PathScrubber(repoRoot, dir);

        KernelSession.ResetFormatting();
        string savedCwd = Directory.GetCurrentDirectory();
        int codeCount = notebook.Cells.Count(c => c.Kind == CellKind.Code);
        int codeIndex = 0, run = 0;
        NotebookFailure? failure = null;
        var warnings = new List<string>();
        // The kernel resolves #r and #load against the current directory, as VS Code starts it in the notebook's folder.
        Directory.SetCurrentDirectory(dir);
        // The kernel swaps the console for its per-cell capture while any cell runs; an abandoned cell (timed
        // out) never hands it back, so later kernels find it installed and do not install it themselves.
        var (savedOut, savedError) = (Console.Out, Console.Error);
        if (s_abandonedCapture is { } capture)
        {
            Console.SetOut(capture.Out);
            Console.SetError(capture.Error);
        }
        var session = new KernelSession(scrubber);
        try
        {
            for (int i = 0; i < notebook.Cells.Count; i++)
            {
                var cell = notebook.Cells[i];
                if (cell.Kind != CellKind.Code) continue;
                codeIndex++;
                if (failure is not null)
                {
                    // Cells after the failing one did not run: clear what an earlier run left there.
                    cell.Json["outputs"] = new JsonArray();
                    cell.Json["execution_count"] = null;
                    continue;
                }
                var sw = Stopwatch.StartNew();
                var (outputs, error) = session.KernelNames.Contains(cell.Kernel)
                    ? await session.RunCellAsync(cell.Source, cell.Kernel, codeIndex, _options.CellTimeout)
                    : RejectKernel(cell);
                run++;
                warnings.AddRange(session.LastWarnings.Select(w => $"cell {i + 1} (code cell {codeIndex}): {w}"));
                cell.Json["outputs"] = outputs;
                cell.Json["execution_count"] = codeIndex;
                if (error is not null)
                    failure = new NotebookFailure(i + 1, codeIndex, error["ename"]!.GetValue<string>(), error["evalue"]!.GetValue<string>());
                CellDone?.Invoke(new CellProgress(notebook.Name, i + 1, notebook.Cells.Count, codeIndex, codeCount, sw.Elapsed.TotalSeconds, error is null));
            }
        }
        finally
        {
            session.Dispose();
            if (session.Abandoned) s_abandonedCapture ??= (Console.Out, Console.Error);
            // Our own output (progress, summaries) goes to the console we were given.
            Console.SetOut(savedOut);
            Console.SetError(savedError);
            Directory.SetCurrentDirectory(savedCwd);
        }

        var figures = notebook.Cells.SelectMany(c => c.Kind == CellKind.Code ? c.Outputs.OfType<JsonObject>() : [])
            .Where(o => o["data"]?[Outputs.PlotlyMime] is not null).ToList();
        int pngs = 0;
        if (figures.Count > 0 && _options.RenderPng) pngs = RenderPngs(figures, repoRoot);

        string? outPath = null, htmlPath = null;
        if (_options.WriteNotebook)
        {
            outPath = _options.OutDir is null ? notebook.OutputPath
                : Path.Combine(Path.GetFullPath(_options.OutDir), Path.GetFileName(notebook.OutputPath));
            if (_options.OutDir is not null) Directory.CreateDirectory(Path.GetFullPath(_options.OutDir));
            IpynbFormat.Write(notebook, outPath);
        }
        if (_options.WriteHtml)
        {
            string htmlDir = _options.HtmlDir is null ? dir : Path.GetFullPath(_options.HtmlDir);
            htmlPath = Path.Combine(htmlDir, Path.GetFileNameWithoutExtension(notebook.Path) + ".html");
            string? plotlyJs = PlotlyJs(repoRoot);
            string? plotlyRef = plotlyJs is null ? null : Path.GetRelativePath(htmlDir, plotlyJs).Replace('\\', '/');
            IpynbFormat.WriteAtomically(htmlPath, HtmlReport.Render(notebook, plotlyRef));
        }

        return new NotebookRunResult(notebook.Path, outPath, htmlPath, notebook.Cells.Count, codeCount, run,
            total.Elapsed.TotalSeconds, figures.Count, pngs, failure) { Warnings = warnings };
    }

    private static (JsonArray Outputs, JsonObject Error) RejectKernel(NotebookCell cell)
    {
        string why = $"'{cell.Kernel}' cells need a kernel that kvnb notebooks run does not host: it runs C# (csharp) cells only";
        var error = Outputs.Error("UnsupportedKernel", why, [why]);
        return ([error], error);
    }

    private string? PlotlyJs(string? repoRoot)
    {
        string? p = _options.PlotlyJsPath ?? Environment.GetEnvironmentVariable("KVNB_PLOTLY_JS");
        if (p is null && repoRoot is not null) p = Path.Combine(repoRoot, "node_modules", "plotly.js-dist-min", "plotly.min.js");
        return p is not null && File.Exists(p) ? Path.GetFullPath(p) : null;
    }

    private int RenderPngs(List<JsonObject> figures, string? repoRoot)
    {
        string? chromium = _options.ChromiumPath ?? PlotlyPngRenderer.FindChromium();
        string? plotlyJs = PlotlyJs(repoRoot);
        if (chromium is null || plotlyJs is null)
        {
            if (!_pngNoticeGiven)
            {
                _pngNoticeGiven = true;
                string? env = Environment.GetEnvironmentVariable("KVNB_CHROMIUM");
                string missing = chromium is null
                    ? string.IsNullOrEmpty(env)
                        ? "chromium not found on PATH (run scripts/setup-notebooks.sh or set KVNB_CHROMIUM)"
                        : $"KVNB_CHROMIUM={env} does not exist"
                    : "plotly.js not found (run scripts/setup-notebooks.sh: npm ci)";
                Notice?.Invoke($"PNG export skipped: {missing}; figures stay interactive only");
            }
            return 0;
        }
        var renderer = new PlotlyPngRenderer(chromium, plotlyJs, _options.ChromiumTimeout);
        IReadOnlyList<string?> pngs;
        try
        {
            pngs = renderer.Render(figures.Select(f => f["data"]![Outputs.PlotlyMime]!).ToList());
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            Notice?.Invoke($"PNG export failed: {e.Message}; figures stay interactive only");
            return 0;
        }
        int n = 0;
        for (int i = 0; i < figures.Count; i++)
        {
            if (pngs[i] is null) continue;
            var data = (JsonObject)figures[i]["data"]!;
            data["image/png"] = pngs[i];
            n++;
        }
        return n;
    }
}

/// <summary>Finds the repository root (the folder holding KvNotebooks.sln) from a folder upward.</summary>
public static class RepoLocator
{
    public const string SolutionFile = "KvNotebooks.sln";

    public static string? FindRoot(string start)
    {
        for (var d = new DirectoryInfo(Path.GetFullPath(start)); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, SolutionFile))) return d.FullName;
        return null;
    }
}
