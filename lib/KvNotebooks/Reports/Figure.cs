using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace KvNotebooks.Reports;

/// <summary>
/// A plotly.js figure: <c>data</c> (traces) + <c>layout</c>, the JSON Plotly.NET would emit. Displayed in a
/// notebook it emits <c>application/vnd.plotly.v1+json</c> and <c>text/plain</c> (no text/html on purpose:
/// VS Code would show the HTML before the PNG; see <see cref="NotebookDisplay"/>); the runner adds an <c>image/png</c>.
/// Build with <see cref="Line"/>, <see cref="Scatter"/>, <see cref="Bar"/> or <see cref="Heatmap"/>, then
/// chain <c>Add…</c>, <see cref="LogX"/>, <see cref="LogY"/>, <see cref="Annotate"/>.
/// </summary>
[TypeFormatterSource(typeof(NotebookDisplay), PreferredMimeTypes = [PlotlyMime, NotebookDisplay.PlainText])]
public sealed class Figure
{
    /// <summary>The MIME type of plotly figure JSON (Jupyter's plotly renderer and VS Code's renderers know it).</summary>
    public const string PlotlyMime = "application/vnd.plotly.v1+json";

    /// <summary>Traces, as plotly.js objects (<c>type</c>, <c>x</c>, <c>y</c>, <c>name</c>, …).</summary>
    public JsonArray Data { get; } = [];
    /// <summary>Layout: title, axes, legend, annotations, size.</summary>
    public JsonObject Layout { get; } = new();

    public Figure(string? title = null, string? xTitle = null, string? yTitle = null)
    {
        if (title is not null) Layout["title"] = new JsonObject { ["text"] = title };
        Layout["xaxis"] = Axis(xTitle);
        Layout["yaxis"] = Axis(yTitle);
        Layout["showlegend"] = true;
    }

    private static JsonObject Axis(string? title) =>
        title is null ? new JsonObject() : new JsonObject { ["title"] = new JsonObject { ["text"] = title } };

    // ---- factories: one per chart kind; each returns an empty figure to chain Add… on ----

    /// <summary>A line chart; add series with <see cref="AddLine"/>.</summary>
    public static Figure Line(string title, string xTitle, string yTitle) => new(title, xTitle, yTitle);
    /// <summary>A scatter chart; add series with <see cref="AddScatter"/>.</summary>
    public static Figure Scatter(string title, string xTitle, string yTitle) => new(title, xTitle, yTitle);
    /// <summary>A bar chart; add series with <see cref="AddBar"/> (several series are grouped).</summary>
    public static Figure Bar(string title, string xTitle, string yTitle)
    {
        var f = new Figure(title, xTitle, yTitle);
        f.Layout["barmode"] = "group";
        return f;
    }

    /// <summary>A heatmap of <paramref name="z"/>[row][column]; labels optional; <paramref name="zMin"/>/<paramref name="zMax"/>
    /// fix the colour range (so maps can be compared); <paramref name="valueFormat"/> (a d3 format such as ".0f")
    /// writes each cell's value in it.</summary>
    public static Figure Heatmap(string title, double[][] z, IEnumerable<string>? xLabels = null, IEnumerable<string>? yLabels = null,
        string? xTitle = null, string? yTitle = null, string colorscale = "Viridis", double? zMin = null, double? zMax = null, string? valueFormat = null)
    {
        var f = new Figure(title, xTitle, yTitle);
        f.Layout["showlegend"] = false;
        var trace = new JsonObject
        {
            ["type"] = "heatmap",
            ["z"] = new JsonArray(z.Select(row => (JsonNode)Numbers(row)).ToArray()),
            ["colorscale"] = colorscale,
        };
        if (xLabels is not null) trace["x"] = Strings(xLabels);
        if (yLabels is not null) trace["y"] = Strings(yLabels);
        if (zMin is { } lo) trace["zmin"] = lo;
        if (zMax is { } hi) trace["zmax"] = hi;
        if (valueFormat is not null) trace["texttemplate"] = "%{z:" + valueFormat + "}";
        f.Data.Add(trace);
        return f;
    }

    /// <summary>
    /// A map of categories: <paramref name="states"/>[row][column] is an index into
    /// <paramref name="names"/> (drawn in <paramref name="colors"/>), or −1 for an empty cell. Rows run
    /// top to bottom; the colour bar names the categories.
    /// </summary>
    public static Figure Categories(string title, int[][] states, IReadOnlyList<string> names, IReadOnlyList<string> colors,
        IEnumerable<string>? xLabels = null, IEnumerable<string>? yLabels = null, string? xTitle = null, string? yTitle = null)
    {
        if (names.Count == 0 || names.Count != colors.Count) throw new ArgumentException("Categories needs one colour per category name");
        int k = names.Count;
        var z = states.Select(row => row.Select(v => v < 0 ? double.NaN : v >= k ? throw new ArgumentException($"state {v} has no category (0..{k - 1})") : (double)v).ToArray()).ToArray();
        var f = Heatmap(title, z, xLabels, yLabels, xTitle, yTitle);
        var scale = new JsonArray();
        for (int i = 0; i < k; i++)
        {
            // Each category owns an equal band of [0, 1]: the colour is flat across the band.
            scale.Add(new JsonArray((double)i / k, colors[i]));
            scale.Add(new JsonArray((double)(i + 1) / k, colors[i]));
        }
        var trace = (JsonObject)f.Data[0]!;
        trace["colorscale"] = scale;
        trace["zmin"] = -0.5;
        trace["zmax"] = k - 0.5;
        trace["colorbar"] = new JsonObject
        {
            ["tickvals"] = Numbers(Enumerable.Range(0, k).Select(i => (double)i)),
            ["ticktext"] = Strings(names),
        };
        ((JsonObject)f.Layout["yaxis"]!)["autorange"] = "reversed";
        return f;
    }

    /// <summary>
    /// Several figures as the panels of one (plotly's subplot grid, <paramref name="columns"/> across, filled row by row):
    /// every panel keeps its traces, axis titles and axis settings; its title becomes a caption above it. A trace name
    /// seen in an earlier panel (the same method in every panel) shares that legend entry instead of repeating it, so
    /// one click hides a method everywhere. Panel annotations (<see cref="Annotate"/>) are not carried over.
    /// </summary>
    public static Figure Grid(string title, IReadOnlyList<Figure> panels, int columns)
    {
        if (panels.Count == 0) throw new ArgumentException("a grid needs at least one panel");
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "a grid needs at least one column");
        columns = Math.Min(columns, panels.Count);
        int rows = (panels.Count + columns - 1) / columns;
        var f = new Figure(title);
        f.Layout["grid"] = new JsonObject { ["rows"] = rows, ["columns"] = columns, ["pattern"] = "independent" };
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var captions = new JsonArray();
        for (int i = 0; i < panels.Count; i++)
        {
            string suffix = i == 0 ? "" : (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var node in panels[i].Data)
            {
                var trace = (JsonObject)node!.DeepClone();
                trace["xaxis"] = "x" + suffix;
                trace["yaxis"] = "y" + suffix;
                if (trace["name"]?.GetValue<string>() is { } name)
                {
                    trace["legendgroup"] = name;
                    bool hidden = trace["showlegend"] is JsonValue v && !v.GetValue<bool>();
                    if (!hidden && !seen.Add(name)) trace["showlegend"] = false;
                }
                f.Data.Add(trace);
            }
            f.Layout["xaxis" + suffix] = panels[i].Layout["xaxis"]?.DeepClone() ?? new JsonObject();
            f.Layout["yaxis" + suffix] = panels[i].Layout["yaxis"]?.DeepClone() ?? new JsonObject();
            if (panels[i].Title is { } caption)
                captions.Add(new JsonObject
                {
                    ["text"] = caption, ["showarrow"] = false, ["x"] = 0.5, ["y"] = 1.0, ["xanchor"] = "center", ["yanchor"] = "bottom",
                    ["xref"] = $"x{suffix} domain", ["yref"] = $"y{suffix} domain",
                });
        }
        if (captions.Count > 0) f.Layout["annotations"] = captions;
        return f;
    }

    // ---- traces ----

    /// <summary>Adds a line series (<c>scatter</c> trace, mode lines+markers).</summary>
    public Figure AddLine(string name, IEnumerable<double> x, IEnumerable<double> y, bool markers = true) =>
        AddTrace(new JsonObject { ["type"] = "scatter", ["mode"] = markers ? "lines+markers" : "lines", ["name"] = name, ["x"] = Numbers(x), ["y"] = Numbers(y) });

    /// <summary>Adds a point series; <paramref name="labels"/> become hover text.</summary>
    public Figure AddScatter(string name, IEnumerable<double> x, IEnumerable<double> y, IEnumerable<string>? labels = null)
    {
        var t = new JsonObject { ["type"] = "scatter", ["mode"] = "markers", ["name"] = name, ["x"] = Numbers(x), ["y"] = Numbers(y) };
        if (labels is not null) t["text"] = Strings(labels);
        return AddTrace(t);
    }

    /// <summary>Adds a bar series over categories.</summary>
    public Figure AddBar(string name, IEnumerable<string> categories, IEnumerable<double> values) =>
        AddTrace(new JsonObject { ["type"] = "bar", ["name"] = name, ["x"] = Strings(categories), ["y"] = Numbers(values) });

    /// <summary>Adds any plotly.js trace object as is.</summary>
    public Figure AddTrace(JsonObject trace)
    {
        Data.Add(trace);
        return this;
    }

    // ---- layout ----

    public Figure LogX() { ((JsonObject)Layout["xaxis"]!)["type"] = "log"; return this; }
    public Figure LogY() { ((JsonObject)Layout["yaxis"]!)["type"] = "log"; return this; }
    public Figure Legend(bool show) { Layout["showlegend"] = show; return this; }
    /// <summary>Fixed size in pixels (also the PNG size; default 900×500).</summary>
    public Figure Size(int width, int height) { Layout["width"] = width; Layout["height"] = height; return this; }

    private readonly List<(double X, double Y, string Text, bool Arrow)> _annotations = [];

    /// <summary>A text note at data coordinates (x, y), with an arrow by default (log axes handled in <see cref="ToJson"/>).</summary>
    public Figure Annotate(double x, double y, string text, bool arrow = true)
    {
        _annotations.Add((x, y, text, arrow));
        return this;
    }

    public string? Title => Layout["title"]?["text"]?.GetValue<string>();

    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The plotly figure JSON: <c>{"data": [...], "layout": {...}}</c>.</summary>
    public string ToJson() => ToJsonObject().ToJsonString(JsonOptions);

    /// <summary>The figure as a JSON object (annotations placed: plotly wants log10 coordinates on log axes).</summary>
    public JsonObject ToJsonObject()
    {
        var layout = (JsonObject)Layout.DeepClone();
        if (_annotations.Count > 0)
        {
            bool logX = layout["xaxis"]?["type"]?.GetValue<string>() == "log";
            bool logY = layout["yaxis"]?["type"]?.GetValue<string>() == "log";
            var list = layout["annotations"] as JsonArray ?? (JsonArray)(layout["annotations"] = new JsonArray());
            foreach (var (x, y, text, arrow) in _annotations)
                list.Add(new JsonObject
                {
                    ["x"] = logX ? Math.Log10(x) : x,
                    ["y"] = logY ? Math.Log10(y) : y,
                    ["text"] = text,
                    ["showarrow"] = arrow,
                });
        }
        return new JsonObject { ["data"] = Data.DeepClone(), ["layout"] = layout };
    }

    public override string ToString()
    {
        var kinds = Data.Select(t => t?["type"]?.GetValue<string>() ?? "?").Distinct();
        return $"Figure \"{Title ?? "(untitled)"}\": {Data.Count} trace(s) [{string.Join(", ", kinds)}]";
    }

    /// <summary>Numbers as a plotly array (non-finite values become null, a gap): for custom traces built with <see cref="AddTrace"/>.</summary>
    public static JsonArray Numbers(IEnumerable<double> values) =>
        new(values.Select(v => double.IsFinite(v) ? JsonValue.Create(v) : null).Select(n => (JsonNode?)n).ToArray());

    /// <summary>Strings as a plotly array: for custom traces built with <see cref="AddTrace"/>.</summary>
    public static JsonArray Strings(IEnumerable<string> values) => new(values.Select(v => (JsonNode?)v).ToArray());
}
