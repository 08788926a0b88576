using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace KvNotebooks.Notebooks;

/// <summary>
/// Turns plotly figure JSON into PNGs with plotly.js in headless chromium — all figures of a notebook in
/// one chromium run (notebooks.md §4): a temp page loads plotly.min.js, calls <c>Plotly.toImage</c> per
/// figure, writes each data URL into a <c>&lt;pre&gt;</c>; <c>--dump-dom</c> prints the page and the
/// base64 is parsed out.
/// </summary>
public sealed partial class PlotlyPngRenderer
{
    private readonly string _chromium;
    private readonly string _plotlyJs;
    private readonly TimeSpan _timeout;

    public PlotlyPngRenderer(string chromium, string plotlyJs, TimeSpan? timeout = null)
    {
        _chromium = chromium;
        _plotlyJs = Path.GetFullPath(plotlyJs);
        _timeout = timeout ?? TimeSpan.FromSeconds(120);
    }

    public const int DefaultWidth = 900, DefaultHeight = 500;

    /// <summary>Chromium from env KVNB_CHROMIUM, else <c>chromium</c> / <c>chromium-browser</c> on PATH; null if none.</summary>
    public static string? FindChromium()
    {
        if (Environment.GetEnvironmentVariable("KVNB_CHROMIUM") is { Length: > 0 } env)
            return File.Exists(env) ? env : null;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            foreach (var name in new[] { "chromium", "chromium-browser" })
            {
                string p = Path.Combine(dir, name);
                if (File.Exists(p)) return p;
            }
        return null;
    }

    [GeneratedRegex(@"<pre id=""png-(\d+)"">([^<]*)</pre>")]
    private static partial Regex PngPre();

    /// <summary>Base64 PNG (no data: prefix) per figure, null where plotly failed on that figure.
    /// Throws <see cref="TimeoutException"/> / <see cref="InvalidOperationException"/> when chromium fails.</summary>
    public IReadOnlyList<string?> Render(IReadOnlyList<JsonNode> figures)
    {
        string work = Directory.CreateTempSubdirectory("kvnb-png-").FullName;
        try
        {
            string page = Path.Combine(work, "page.html");
            File.WriteAllText(page, Page(figures));
            string profile = Path.Combine(work, "profile");
            var psi = new ProcessStartInfo(_chromium)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[]
            {
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", $"--user-data-dir={profile}",
                $"--virtual-time-budget={15000 + 5000 * figures.Count}", "--dump-dom", new Uri(page).AbsoluteUri,
            }) psi.ArgumentList.Add(a);

            using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start chromium ({_chromium})");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(_timeout))
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw new TimeoutException($"chromium did not finish rendering {figures.Count} figure(s) within {_timeout.TotalSeconds:0} s ({_chromium})");
            }
            process.WaitForExit();
            string dom = stdout.GetAwaiter().GetResult();
            var result = new string?[figures.Count];
            foreach (Match m in PngPre().Matches(dom))
            {
                int i = int.Parse(m.Groups[1].Value);
                const string prefix = "data:image/png;base64,";
                string v = m.Groups[2].Value.Trim();
                if (i < result.Length && v.StartsWith(prefix, StringComparison.Ordinal)) result[i] = v[prefix.Length..];
            }
            if (result.All(r => r is null))
            {
                string err = stderr.GetAwaiter().GetResult();
                string tail = string.Join(" | ", err.Split('\n').Where(l => l.Contains("ERROR") || l.Contains("Uncaught")).TakeLast(3));
                throw new InvalidOperationException(
                    $"chromium rendered no figure (exit code {process.ExitCode}){(tail.Length > 0 ? ": " + tail : "")}");
            }
            return result;
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private string Page(IReadOnlyList<JsonNode> figures)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html><html><head><meta charset=\"utf-8\">");
        sb.Append($"<script src=\"{new Uri(_plotlyJs).AbsoluteUri}\"></script></head><body>\n");
        for (int i = 0; i < figures.Count; i++) sb.Append($"<pre id=\"png-{i}\"></pre>\n");
        sb.Append("<script>\nconst figures = [");
        sb.Append(string.Join(",\n", figures.Select(f => f.ToJsonString())).Replace("</", "<\\/"));
        sb.Append($"];\n(async () => {{\n  for (let i = 0; i < figures.length; i++) {{\n    const pre = document.getElementById('png-' + i);\n" +
                  "    try {\n      const f = figures[i]; const l = f.layout || {};\n" +
                  $"      pre.textContent = await Plotly.toImage({{data: f.data || [], layout: l, config: f.config || {{}}}}, {{format: 'png', width: l.width || {DefaultWidth}, height: l.height || {DefaultHeight}}});\n" +
                  "    } catch (e) { pre.textContent = 'error: ' + e; }\n  }\n})();\n</script></body></html>\n");
        return sb.ToString();
    }
}
