using System.Buffers.Binary;
using KvNotebooks.Notebooks;
using static KvNotebooks.Tests.Notebooks.NotebookFixtures;

namespace KvNotebooks.Tests.Notebooks;

/// <summary>
/// Renders real PNGs with headless chromium + plotly.js. CI installs both with scripts/setup-notebooks.sh;
/// where they are missing this test FAILS, unless KVNB_ALLOW_NO_CHROMIUM=1 is set (then it checks that the
/// run still succeeds without PNGs and says so) — it is never silently skipped.
/// </summary>
[Collection(NotebookCollection.Name)]
public sealed class PlotlyPngTests : IDisposable
{
    private readonly NotebookFixtures _fx = new();

    public void Dispose() => _fx.Dispose();

    [Fact]
    public void Figures_get_png_outputs_with_real_dimensions()
    {
        string? chromium = PlotlyPngRenderer.FindChromium();
        string plotlyJs = Path.Combine(RepoRoot, "node_modules", "plotly.js-dist-min", "plotly.min.js");
        bool available = chromium is not null && File.Exists(plotlyJs);
        bool allowMissing = Environment.GetEnvironmentVariable("KVNB_ALLOW_NO_CHROMIUM") == "1";
        if (!available && !allowMissing)
            Assert.Fail($"PNG export cannot be tested: chromium {(chromium is null ? "missing" : "found")}, plotly.js {(File.Exists(plotlyJs) ? "found" : "missing")}. " +
                        "Run scripts/setup-notebooks.sh, or set KVNB_ALLOW_NO_CHROMIUM=1 to accept a run without PNGs.");

        var notices = new List<string>();
        var runner = new NotebookRunner(new RunnerOptions { RepoRoot = RepoRoot });
        runner.Notice += notices.Add;
        var result = runner.Run(_fx["figure.ipynb"]);
        Assert.True(result.Ok, result.Failure?.ToString());
        Assert.Equal(2, result.Figures);

        if (!available)
        {
            Assert.Equal(0, result.Pngs);
            Assert.Contains("PNG export skipped", Assert.Single(notices));
            return;
        }

        Assert.Empty(notices);
        Assert.Equal(2, result.Pngs);
        var pngs = CodeCells(Read(_fx["figure.ipynb"])).SelectMany(OutputsOf)
            .Where(o => o["data"]?["image/png"] is not null)
            .Select(o => Convert.FromBase64String(o["data"]!["image/png"]!.GetValue<string>())).ToList();
        Assert.Equal(2, pngs.Count);
        foreach (var png in pngs)
        {
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
            Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
            int width = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4));
            int height = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20, 4));
            Assert.Equal(PlotlyPngRenderer.DefaultWidth, width);
            Assert.Equal(PlotlyPngRenderer.DefaultHeight, height);
            Assert.True(png.Length > 10_000, "a rendered chart is more than a blank image");
        }
        string html = File.ReadAllText(result.HtmlPath!);
        Assert.Contains("src=\"data:image/png;base64,", html);
    }
}
