using System.CommandLine;
using KvNotebooks.Notebooks;
using Spectre.Console;

namespace KvNotebooks.Cli.Commands;

/// <summary>
/// <c>kvnb notebooks run [files…] [--no-png] [--html-dir DIR] [--cell-timeout S] [--json]</c>: executes C#
/// notebooks headlessly on the .NET Interactive C# kernel (all of them in this one process), writes the
/// executed .ipynb, PNGs of the figures and an HTML report, and stops with exit code 1 at the first failing
/// notebook, naming the cell.
/// Note: kvnb itself loads KvNotebooks.dll, so a notebook's <c>#r "…/KvNotebooks.dll"</c> gets the copy
/// already loaded in this process (same assembly identity wins over path; both come from the same source).
/// </summary>
public static class NotebooksCommand
{
    public static Command Create()
    {
        var cmd = new Command("notebooks", "Run the C# notebooks under notebooks/ headlessly");
        cmd.Subcommands.Add(CreateRun());
        return cmd;
    }

    private sealed record Summary(string Notebook, bool Ok, int Cells, int CodeCellsRun, int CodeCells, double Seconds,
        int Figures, int Pngs, string? Output, string? Html, string? Error, int? FailedCell, int? FailedCodeCell);

    private static Command CreateRun()
    {
        var files = new Argument<string[]>("files") { Description = "Notebooks (.ipynb or .dib); default: notebooks/*.ipynb of the repository, in name order", Arity = ArgumentArity.ZeroOrMore };
        var noPng = new Option<bool>("--no-png") { Description = "Do not render figures to PNG (no chromium needed)" };
        var htmlDir = new Option<string?>("--html-dir") { Description = "Write the HTML reports here instead of next to each notebook" };
        var outDir = new Option<string?>("--out-dir") { Description = "Write the executed notebooks here instead of in place (they still run from their own folder)" };
        var cellTimeout = new Option<double>("--cell-timeout")
        {
            Description = "Seconds a cell may run before it is cancelled and fails its notebook (0: no limit)",
            DefaultValueFactory = _ => RunnerOptions.DefaultCellTimeout.TotalSeconds,
        };
        var json = Cli.JsonOption();
        var cmd = new Command("run", "Execute notebooks in order, write executed .ipynb, PNG figures and HTML reports");
        cmd.Arguments.Add(files);
        cmd.Options.Add(noPng);
        cmd.Options.Add(htmlDir);
        cmd.Options.Add(outDir);
        cmd.Options.Add(cellTimeout);
        cmd.Options.Add(json);
        cmd.SetAction(parse => Cli.Run(() => Run(parse.GetValue(files) ?? [], parse.GetValue(noPng), parse.GetValue(htmlDir),
            parse.GetValue(outDir), parse.GetValue(cellTimeout), parse.GetValue(json))));
        return cmd;
    }

    private static int Run(string[] files, bool noPng, string? htmlDir, string? outDir, double cellTimeout, bool json)
    {
        if (!double.IsFinite(cellTimeout) || cellTimeout < 0)
            throw new ArgumentException($"--cell-timeout must be a number of seconds ≥ 0 (0: no limit), not {cellTimeout}");
        string? root = RepoLocator.FindRoot(Directory.GetCurrentDirectory());
        var paths = files.Length > 0 ? files.Select(Path.GetFullPath).ToList() : DefaultNotebooks(root);
        foreach (var p in paths)
            if (!File.Exists(p)) throw new FileNotFoundException($"notebook not found: {p}");

        // Progress goes to stderr with --json (stdout is the JSON), to stdout otherwise.
        var log = json ? Console.Error : Console.Out;
        var runner = new NotebookRunner(new RunnerOptions
        {
            RepoRoot = root, RenderPng = !noPng, HtmlDir = htmlDir, OutDir = outDir,
            CellTimeout = cellTimeout > 0 ? TimeSpan.FromSeconds(cellTimeout) : null,
        });
        runner.CellDone += p => log.WriteLine($"  cell {p.CellNumber}/{p.CellCount} (code {p.CodeCellNumber}/{p.CodeCellCount}) {p.Seconds,6:0.00} s{(p.Ok ? "" : "  FAILED")}");
        runner.Notice += m => log.WriteLine($"kvnb: notice: {m}");

        var summaries = new List<Summary>();
        NotebookRunResult? failed = null;
        foreach (var path in paths)
        {
            log.WriteLine($"{Display(path, root)}");
            var r = runner.Run(path);
            log.WriteLine($"  {(r.Ok ? "ok" : "FAILED")} in {r.Seconds:0.0} s, {r.Figures} figure(s), {r.Pngs} PNG(s)" +
                          (r.Warnings.Count > 0 ? $", {r.Warnings.Count} compiler warning(s)" : ""));
            // The official Jupyter kernel prints these to stderr, so CI's comparison of the two kernels would fail on them.
            foreach (var w in r.Warnings) Console.Error.WriteLine($"kvnb: warning: {Display(path, root)}: {w}");
            summaries.Add(new Summary(Display(path, root), r.Ok, r.Cells, r.CodeCellsRun, r.CodeCells, Math.Round(r.Seconds, 2),
                r.Figures, r.Pngs, r.OutputPath is null ? null : Display(r.OutputPath, root), r.HtmlPath is null ? null : Display(r.HtmlPath, root),
                r.Failure?.ToString(), r.Failure?.CellNumber, r.Failure?.CodeCellNumber));
            if (!r.Ok) { failed = r; break; }
        }

        if (json) Cli.WriteJson(summaries);
        else
        {
            var table = new Table().AddColumns("notebook", "status", "code cells run", "seconds", "figures", "PNGs", "HTML");
            foreach (var s in summaries)
                table.AddRow(Markup.Escape(s.Notebook), s.Ok ? "[green]ok[/]" : "[red]failed[/]", $"{s.CodeCellsRun}/{s.CodeCells}",
                    s.Seconds.ToString("0.00"), s.Figures.ToString(), s.Pngs.ToString(), Markup.Escape(s.Html ?? "-"));
            AnsiConsole.Write(table);
        }
        if (failed is not null)
        {
            Console.Error.WriteLine($"kvnb: error: {Display(failed.Notebook, root)}: {failed.Failure}");
            return 1;
        }
        return 0;
    }

    private static List<string> DefaultNotebooks(string? root)
    {
        if (root is null)
            throw new ArgumentException($"no {RepoLocator.SolutionFile} found from {Directory.GetCurrentDirectory()} upward: run inside the repository or name the notebooks");
        string dir = Path.Combine(root, "notebooks");
        var list = Directory.Exists(dir)
            ? Directory.GetFiles(dir, "*.ipynb").OrderBy(p => Path.GetFileName(p), StringComparer.Ordinal).ToList()
            : [];
        if (list.Count == 0) throw new FileNotFoundException($"no notebooks (*.ipynb) in {dir}");
        return list;
    }

    private static string Display(string path, string? root) =>
        root is not null && path.StartsWith(root + "/", StringComparison.Ordinal) ? path[(root.Length + 1)..] : path;
}
