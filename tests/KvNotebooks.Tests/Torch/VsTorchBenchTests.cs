using System.Diagnostics;
using System.Text.Json;

namespace KvNotebooks.Tests.Torch;

/// <summary><c>kvnb bench --vs-torch</c> as a user runs it: the built kvnb (whose dependencies hold no TorchSharp) loads
/// LibTorch's side from lib/KvNotebooks.Torch's build folder and prints every figure for both sides with their ratio.</summary>
[Collection(KvNotebooks.Tests.Notebooks.NotebookCollection.Name)]   // redirects Console like the CLI tests
public class VsTorchBenchTests
{
    private static string BuildFolder(string project)
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));   // …/bin/CONFIG/TFM
        return Path.Combine(TestPaths.RepoRoot, "lib", project, "bin", here.Parent!.Name, here.Name);
    }

    [Fact]
    public void KvnbNeedsNoTorchSharpExceptForVsTorch()
    {
        var deps = File.ReadAllText(Path.Combine(BuildFolder("KvNotebooks.Cli"), "kvnb.deps.json"));
        Assert.DoesNotContain("TorchSharp", deps);
        Assert.DoesNotContain("libtorch", deps);
        Assert.DoesNotContain("TorchSharp", File.ReadAllText(Path.Combine(BuildFolder("KvNotebooks"), "KvNotebooks.deps.json")));
    }

    [Fact]
    public void VsTorchPrintsEveryFigureForBothSides()
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(BuildFolder("KvNotebooks.Cli"), "kvnb.dll"), "bench", "--vs-torch", "--tokens", "48", "--steps", "2",
                                  "--gemm", "48", "--threads", "1", "--json" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(180_000), "kvnb bench --vs-torch did not finish in 3 minutes");
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {stderr.Result}");
        var r = JsonDocument.Parse(stdout.Result).RootElement;
        Assert.StartsWith("LibTorch 2.10", r.GetProperty("torch").GetString());
        var rows = r.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(["pre-fill at 48", "decode at 48", "training at 48 (fwd + bwd)", "attention layer at 48", "GEMM 48³"],
            rows.Select(x => x.GetProperty("figure").GetString()));
        foreach (var row in rows)
        {
            double ours = row.GetProperty("ours").GetDouble(), torch = row.GetProperty("torch").GetDouble();
            Assert.True(ours > 0 && torch > 0 && double.IsFinite(ours) && double.IsFinite(torch), row.ToString());
            Assert.Equal(ours / torch, row.GetProperty("ratio").GetDouble(), 9);
        }
        Assert.True(r.GetProperty("oursPrefillPeakBytes").GetInt64() > 10_000_000);
        Assert.True(r.GetProperty("torchPrefillPeakBytes").GetInt64() > 10_000_000);
    }

    [Fact]
    public void BenchWithoutASubcommandOrVsTorchSaysWhatToDo()
    {
        var err = new StringWriter();
        var saved = Console.Error;
        Console.SetError(err);
        try { Assert.Equal(2, KvNotebooks.Cli.Program.Main(["bench"])); }
        finally { Console.SetError(saved); }
        Assert.Contains("--vs-torch", err.ToString());
    }
}
