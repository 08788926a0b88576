using KvNotebooks.Notebooks;
using static KvNotebooks.Tests.Notebooks.NotebookFixtures;

namespace KvNotebooks.Tests.Notebooks;

/// <summary>When PNG export cannot happen, the run still succeeds and says so once; a hung chromium is cut off.</summary>
[Collection(NotebookCollection.Name)]
public sealed class PngFallbackTests : IDisposable
{
    private readonly NotebookFixtures _fx = new();

    public void Dispose() => _fx.Dispose();

    [Fact]
    public void Missing_plotly_js_gives_one_notice_per_run_and_keeps_interactive_figures()
    {
        var notices = new List<string>();
        var runner = new NotebookRunner(new RunnerOptions { RepoRoot = RepoRoot, PlotlyJsPath = Path.Combine(_fx.Dir, "missing.js") });
        runner.Notice += notices.Add;
        for (int i = 0; i < 2; i++)
        {
            var r = runner.Run(_fx["figure.ipynb"]);
            Assert.True(r.Ok, r.Failure?.ToString());
            Assert.Equal((2, 0), (r.Figures, r.Pngs));
        }
        Assert.StartsWith("PNG export skipped: plotly.js not found", Assert.Single(notices));
        var fig = OutputsOf(CodeCells(Read(_fx["figure.ipynb"]))[0]).Single();
        Assert.NotNull(fig["data"]!["application/vnd.plotly.v1+json"]);
        Assert.Null(fig["data"]!["image/png"]);
    }

    [Fact]
    public void A_chromium_that_hangs_is_timed_out_with_a_clear_message()
    {
        string fake = Path.Combine(_fx.Dir, "fake-chromium");
        File.WriteAllText(fake, "#!/bin/sh\nsleep 60\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var notices = new List<string>();
        var runner = new NotebookRunner(new RunnerOptions
        {
            RepoRoot = RepoRoot,
            ChromiumPath = fake,
            PlotlyJsPath = Path.Combine(RepoRoot, "package.json"), // any existing file: chromium never gets to load it
            ChromiumTimeout = TimeSpan.FromSeconds(1),
        });
        runner.Notice += notices.Add;
        var r = runner.Run(_fx["figure.ipynb"]);
        Assert.True(r.Ok);
        Assert.Equal(0, r.Pngs);
        Assert.Contains("chromium did not finish rendering 2 figure(s) within 1 s", Assert.Single(notices));
    }
}
