using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Markdig;

namespace KvNotebooks.Notebooks;

/// <summary>
/// One self-contained HTML page per executed notebook: markdown rendered with Markdig, code cells,
/// and their outputs (streams, HTML, images, errors). Plotly figures are embedded as their PNG; the page
/// also references plotly.min.js by a <em>relative</em> path (not inlined: it is 4.8 MB) and, when that
/// script is reachable, replaces each PNG with the interactive figure. Moved elsewhere, the page still
/// shows the PNGs.
/// </summary>
public static class HtmlReport
{
    private static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    /// <param name="notebook">The executed notebook (outputs in place).</param>
    /// <param name="plotlyJsRelative">plotly.min.js relative to the page's folder, or null when unknown.</param>
    public static string Render(Notebook notebook, string? plotlyJsRelative)
    {
        var sb = new StringBuilder();
        string title = WebUtility.HtmlEncode(Path.GetFileNameWithoutExtension(notebook.Path));
        sb.Append($$"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
            <style>
            body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
            .cell { margin: 1em 0; }
            .code pre.src { background: #f6f8fa; border-left: 3px solid #4a7bd0; padding: .6em; overflow-x: auto; }
            .prompt { color: #888; font: 12px monospace; }
            .out pre { margin: .3em 0; padding: .4em; overflow-x: auto; }
            .stderr { background: #fff3f3; }
            .error { background: #fdd; border-left: 3px solid #c00; padding: .4em; }
            table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 2px 6px; }
            img { max-width: 100%; }
            </style></head><body>
            <p class="prompt">{{WebUtility.HtmlEncode(notebook.Name)}} — executed by kvnb notebooks run</p>

            """);

        int figure = 0;
        foreach (var cell in notebook.Cells)
        {
            switch (cell.Kind)
            {
                case CellKind.Markdown:
                    sb.Append("<div class=\"cell markdown\">").Append(Markdig.Markdown.ToHtml(cell.Source, Markdown)).Append("</div>\n");
                    break;
                case CellKind.Raw:
                    sb.Append("<div class=\"cell raw\"><pre>").Append(Enc(cell.Source)).Append("</pre></div>\n");
                    break;
                default:
                    string count = cell.ExecutionCount?.ToString() ?? " ";
                    sb.Append($"<div class=\"cell code\"><div class=\"prompt\">[{count}]</div><pre class=\"src\"><code>{Enc(cell.Source)}</code></pre>\n");
                    foreach (var output in cell.Outputs.OfType<JsonObject>()) AppendOutput(sb, output, ref figure);
                    sb.Append("</div>\n");
                    break;
            }
        }

        if (figure > 0 && plotlyJsRelative is not null)
        {
            sb.Append($"<script src=\"{WebUtility.HtmlEncode(plotlyJsRelative)}\"></script>\n");
            sb.Append("""
                <script>
                if (window.Plotly) {
                  document.querySelectorAll('div.plotly-figure').forEach(div => {
                    const fig = JSON.parse(div.querySelector('script[type="application/json"]').textContent);
                    const host = document.createElement('div');
                    div.querySelectorAll('img,.nopng').forEach(e => e.remove());
                    div.appendChild(host);
                    Plotly.newPlot(host, fig.data || [], fig.layout || {}, Object.assign({responsive: true}, fig.config || {}));
                  });
                }
                </script>

                """);
        }
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    private static void AppendOutput(StringBuilder sb, JsonObject output, ref int figure)
    {
        switch (output["output_type"]?.GetValue<string>())
        {
            case "stream":
                string name = output["name"]?.GetValue<string>() ?? "stdout";
                sb.Append($"<div class=\"out\"><pre class=\"{name}\">{Enc(Outputs.Text(output["text"]))}</pre></div>\n");
                break;
            case "error":
                var tb = output["traceback"] as JsonArray ?? [];
                sb.Append("<div class=\"out\"><pre class=\"error\">")
                  .Append(Enc($"{output["ename"]}: {output["evalue"]}"));
                foreach (var line in tb.Skip(1)) sb.Append('\n').Append(Enc(line?.GetValue<string>() ?? ""));
                sb.Append("</pre></div>\n");
                break;
            case "display_data" or "execute_result":
                if (output["data"] is JsonObject data) AppendData(sb, data, ref figure);
                break;
        }
    }

    private static void AppendData(StringBuilder sb, JsonObject data, ref int figure)
    {
        sb.Append("<div class=\"out\">");
        string? png = data["image/png"]?.GetValue<string>();
        if (data[Outputs.PlotlyMime] is { } fig)
        {
            figure++;
            sb.Append("<div class=\"plotly-figure\">");
            if (png is not null) sb.Append($"<img alt=\"figure {figure}\" src=\"data:image/png;base64,{png}\">");
            else sb.Append($"<pre class=\"nopng\">{Enc(Outputs.Text(data["text/plain"]))}\n(interactive figure: needs plotly.min.js; no PNG was rendered)</pre>");
            sb.Append("<script type=\"application/json\">").Append(fig.ToJsonString().Replace("</", "<\\/")).Append("</script></div>");
        }
        else if (data["text/html"] is { } html) sb.Append(Outputs.Text(html));
        else if (png is not null) sb.Append($"<img src=\"data:image/png;base64,{png}\">");
        else if (data["image/svg+xml"] is { } svg) sb.Append(Outputs.Text(svg));
        else if (data["text/markdown"] is { } md) sb.Append(Markdig.Markdown.ToHtml(Outputs.Text(md), Markdown));
        else if (data["text/plain"] is { } text) sb.Append($"<pre>{Enc(Outputs.Text(text))}</pre>");
        sb.Append("</div>\n");
    }

    private static string Enc(string s) => WebUtility.HtmlEncode(s);
}
