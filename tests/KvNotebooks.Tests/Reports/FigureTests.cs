using System.Text.Json.Nodes;
using KvNotebooks.Reports;
using KvNotebooks.Tests.Notebooks;
using Microsoft.DotNet.Interactive.Formatting;

namespace KvNotebooks.Tests.Reports;

[Collection(NotebookCollection.Name)] // uses the process-wide Formatter
public sealed class FigureTests
{
    [Fact]
    public void Line_figure_json_has_traces_titles_log_axis_and_annotations()
    {
        var fig = Figure.Line("Footprint", "tokens", "fraction")
            .AddLine("full", [1, 10, 100], [1, 1, 1])
            .AddLine("snapkv", [1, 10, 100], [1, 0.5, 0.2], markers: false)
            .Annotate(100, 0.2, "budget")
            .LogX();
        var json = (JsonObject)JsonNode.Parse(fig.ToJson())!;
        Assert.Equal(["data", "layout"], json.Select(p => p.Key));
        var data = json["data"]!.AsArray();
        Assert.Equal(2, data.Count);
        Assert.Equal("scatter", data[0]!["type"]!.GetValue<string>());
        Assert.Equal("lines+markers", data[0]!["mode"]!.GetValue<string>());
        Assert.Equal("lines", data[1]!["mode"]!.GetValue<string>());
        Assert.Equal("snapkv", data[1]!["name"]!.GetValue<string>());
        Assert.Equal([1, 0.5, 0.2], data[1]!["y"]!.AsArray().Select(v => v!.GetValue<double>()));
        var layout = json["layout"]!;
        Assert.Equal("Footprint", layout["title"]!["text"]!.GetValue<string>());
        Assert.Equal("tokens", layout["xaxis"]!["title"]!["text"]!.GetValue<string>());
        Assert.Equal("fraction", layout["yaxis"]!["title"]!["text"]!.GetValue<string>());
        Assert.Equal("log", layout["xaxis"]!["type"]!.GetValue<string>());
        Assert.True(layout["showlegend"]!.GetValue<bool>());
        var note = layout["annotations"]![0]!;
        Assert.Equal(2.0, note["x"]!.GetValue<double>(), 12); // log10(100): plotly's coordinates on a log axis
        Assert.Equal(0.2, note["y"]!.GetValue<double>());
    }

    [Fact]
    public void Bar_scatter_and_heatmap_traces()
    {
        var bar = (JsonObject)JsonNode.Parse(Figure.Bar("b", "method", "KV").AddBar("a", ["x", "y"], [1, 2]).AddBar("b", ["x", "y"], [3, 4]).ToJson())!;
        Assert.Equal("group", bar["layout"]!["barmode"]!.GetValue<string>());
        Assert.Equal("bar", bar["data"]![1]!["type"]!.GetValue<string>());
        Assert.Equal("y", bar["data"]![0]!["x"]![1]!.GetValue<string>());

        var sc = (JsonObject)JsonNode.Parse(Figure.Scatter("s", "x", "y").AddScatter("p", [1], [double.NaN], ["pt"]).LogY().ToJson())!;
        Assert.Equal("markers", sc["data"]![0]!["mode"]!.GetValue<string>());
        Assert.Null(sc["data"]![0]!["y"]![0]); // NaN → null (a gap), never invalid JSON
        Assert.Equal("pt", sc["data"]![0]!["text"]![0]!.GetValue<string>());

        var hm = (JsonObject)JsonNode.Parse(Figure.Heatmap("h", [[1, 2], [3, 4]], ["a", "b"], ["r1", "r2"]).ToJson())!;
        Assert.Equal("heatmap", hm["data"]![0]!["type"]!.GetValue<string>());
        Assert.Equal(4, hm["data"]![0]!["z"]![1]![1]!.GetValue<double>());
        Assert.False(hm["layout"]!["showlegend"]!.GetValue<bool>());
        Assert.Null(hm["data"]![0]!["zmin"]);
        var fixedRange = (JsonObject)JsonNode.Parse(Figure.Heatmap("h", [[1]], zMin: 0, zMax: 100, valueFormat: ".0f").ToJson())!;
        Assert.Equal(0, fixedRange["data"]![0]!["zmin"]!.GetValue<double>());
        Assert.Equal(100, fixedRange["data"]![0]!["zmax"]!.GetValue<double>());
        Assert.Equal("%{z:.0f}", fixedRange["data"]![0]!["texttemplate"]!.GetValue<string>());
    }

    [Fact]
    public void Display_emits_plotly_json_and_plain_text_but_no_html()
    {
        Formatter.ResetToDefault();
        var fig = Figure.Line("t", "x", "y").AddLine("a", [1, 2], [3, 4]);
        var preferred = Formatter.GetPreferredMimeTypesFor(typeof(Figure)).ToList();
        Assert.Contains(Figure.PlotlyMime, preferred);
        Assert.Contains("text/plain", preferred); // the kernel emits only the preferred types
        Assert.DoesNotContain("text/html", preferred);
        Assert.Equal(fig.ToJson(), fig.ToDisplayString(Figure.PlotlyMime));
        Assert.Equal("Figure \"t\": 1 trace(s) [scatter]", fig.ToDisplayString("text/plain"));
    }

    [Fact]
    public void The_engine_references_no_notebook_or_aspnet_assembly()
    {
        // Figure and Table reach the kernel's Formatter by convention (Reports/NotebookDisplay.cs), not by reference.
        var names = typeof(Figure).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.Contains("System.Runtime", names);
        Assert.DoesNotContain(names, n => n.StartsWith("Microsoft.DotNet.Interactive", StringComparison.Ordinal)
                                         || n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal));
    }

    [Fact]
    public void CategoriesMapsStatesToBandsAndNamesThem()
    {
        var f = Figure.Categories("states", [[0, -1], [1, 2]], ["evicted", "inactive", "active"], ["#ccc", "#9cf", "#036"]);
        var t = f.ToJsonObject()["data"]![0]!;
        var z = t["z"]!.AsArray();
        Assert.Equal(0, z[0]![0]!.GetValue<double>());
        Assert.Null(z[0]![1]); // empty cell → NaN → null in plotly JSON
        Assert.Equal(2, z[1]![1]!.GetValue<double>());
        Assert.Equal(-0.5, t["zmin"]!.GetValue<double>());
        Assert.Equal(2.5, t["zmax"]!.GetValue<double>());
        Assert.Equal(["evicted", "inactive", "active"], t["colorbar"]!["ticktext"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(6, t["colorscale"]!.AsArray().Count);
        Assert.Throws<ArgumentException>(() => Figure.Categories("bad", [[3]], ["a"], ["#000"]));
    }
}

public sealed class KvTimelineTests
{
    [Fact]
    public void TimelineHasOneLinePerRunWithTwoPointsPerStep_TheSawTooth()
    {
        var w = KvNotebooks.Tests.Inference.TinyModels.Weights(KvNotebooks.Tests.Inference.TinyModels.Config(), seed: 1);
        var model = new KvNotebooks.Model.LlamaModel(w);
        var prompt = KvNotebooks.Tests.Inference.TinyModels.Tokens(40, w.Config.VocabSize, seed: 2);
        var post = new KvNotebooks.Inference.Session(model, new KvNotebooks.Eviction.ScheduledEviction(new KvNotebooks.Eviction.SnapKV(),
            KvNotebooks.Eviction.EvictionSchedule.PostFill(KvNotebooks.Eviction.EvictionBudget.Absolute(8), 4) with { CapacityMultiple = 1 }), 10, pageSize: 4);
        post.Run(prompt, 3);
        var chunked = new KvNotebooks.Inference.Session(model, new KvNotebooks.Eviction.ScheduledEviction(new KvNotebooks.Eviction.SnapKV(),
            KvNotebooks.Eviction.EvictionSchedule.Naive(KvNotebooks.Eviction.EvictionBudget.Absolute(8), 4)), 10, pageSize: 4);
        chunked.Run(prompt, 3);
        var fig = KvTimeline.Entries(("post-fill", post.Meter.Steps), ("naive", chunked.Meter.Steps));
        var data = ((JsonObject)JsonNode.Parse(fig.ToJson())!)["data"]!.AsArray();
        Assert.Equal(2, data.Count);
        Assert.Equal([10.0, 10, 20, 20, 30, 30, 40, 40, 41, 41, 42, 42, 43, 43], data[0]!["x"]!.AsArray().Select(v => v!.GetValue<double>()));
        var postY = data[0]!["y"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        var naiveY = data[1]!["y"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        Assert.Equal(4 * 40, postY[6]);                      // post-fill: the last chunk attends over the whole prompt…
        Assert.Equal(4 * 8, postY[7]);                       // …and then keeps 8 per head
        Assert.Equal(4 * (8 + 3), postY[^1]);                // 8 kept + 3 decoded per head
        Assert.True(naiveY.Max() < postY.Max());
        // The saw-tooth: each naive chunk rises to 10 more per head while it attends, then drops to what it keeps.
        for (int k = 0; k < 4; k++) Assert.True(naiveY[2 * k] > naiveY[2 * k + 1], $"chunk {k} evicted");
        for (int k = 1; k < 4; k++) Assert.Equal(naiveY[2 * k - 1] + 4 * 10, naiveY[2 * k]);
        // Bytes: each step's own peak, at least what is held after it, the largest of them the run's peak.
        var bytes = KvTimeline.Bytes(("naive", chunked.Meter.Steps)).Data[0]!["y"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        Assert.Equal(chunked.Meter.Steps.SelectMany(s => new[] { (double)s.StepPeakBytes, s.AllocatedBytes }), bytes);
        Assert.All(chunked.Meter.Steps, s => Assert.True(s.StepPeakBytes >= s.AllocatedBytes));
        Assert.Equal(chunked.Cache.PeakAllocatedBytes, (long)bytes.Max());
    }
}
