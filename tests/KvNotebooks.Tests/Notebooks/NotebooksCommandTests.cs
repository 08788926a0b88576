using System.Text.Json.Nodes;
using KvNotebooks.Cli;

namespace KvNotebooks.Tests.Notebooks;

[Collection(NotebookCollection.Name)]
public sealed class NotebooksCommandTests : IDisposable
{
    private readonly NotebookFixtures _fx = new();

    public void Dispose() => _fx.Dispose();

    private static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var (savedOut, savedErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            int code = Program.BuildRoot().Parse(args).Invoke();
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(savedOut);
            Console.SetError(savedErr);
        }
    }

    [Fact]
    public void Run_reports_json_summary_and_stops_at_the_first_failing_notebook()
    {
        var (code, stdout, stderr) = Invoke("notebooks", "run", _fx["state.ipynb"], _fx["error.ipynb"], _fx["figure.ipynb"],
            "--no-png", "--json", "--html-dir", Path.Combine(_fx.Dir, "html"));
        Assert.Equal(1, code);
        var summary = JsonNode.Parse(stdout)!.AsArray();
        Assert.Equal(2, summary.Count); // figure.ipynb is never started
        Assert.True(summary[0]!["ok"]!.GetValue<bool>());
        Assert.False(summary[1]!["ok"]!.GetValue<bool>());
        Assert.Equal(3, summary[1]!["failedCell"]!.GetValue<int>());
        Assert.Equal(2, summary[1]!["failedCodeCell"]!.GetValue<int>());
        Assert.Contains("cell 2/5 (code 1/4)", stderr);
        Assert.Contains("error.ipynb: cell 3 (code cell 2): InvalidOperationException", stderr);
        Assert.True(File.Exists(Path.Combine(_fx.Dir, "html", "state.html")));
    }

    [Fact]
    public void Out_dir_keeps_the_source_notebook_untouched()
    {
        string before = File.ReadAllText(_fx["state.ipynb"]);
        string outDir = Path.Combine(_fx.Dir, "executed");
        var (code, _, stderr) = Invoke("notebooks", "run", _fx["state.ipynb"], "--no-png", "--out-dir", outDir, "--html-dir", outDir);
        Assert.True(code == 0, stderr);
        Assert.Equal(before, File.ReadAllText(_fx["state.ipynb"]));
        var executed = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "state.ipynb")))!;
        Assert.Contains(executed["cells"]!.AsArray(), c => c!["outputs"] is JsonArray { Count: > 0 });
    }

    [Fact]
    public void Missing_notebook_is_a_user_error()
    {
        var (code, _, stderr) = Invoke("notebooks", "run", _fx["nope.ipynb"]);
        Assert.Equal(2, code);
        Assert.Contains("notebook not found", stderr);
    }
}
