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

public sealed class SweepFigureTests
{
    private static KvNotebooks.Evaluation.CategoryPoint Point(string method, string point, double footprint, double score, double? lo = null, double? hi = null) =>
        new(method, point, point, 2048, 512, "Recall", score, footprint, footprint, 0, 2)
        {
            ScoreEstimate = lo is null ? null : new KvNotebooks.Evaluation.Estimate(score, 0.05, lo.Value, hi!.Value, 20),
        };

    private static double[] Doubles(JsonNode? a) => a!.AsArray().Select(v => v is null ? double.NaN : v.GetValue<double>()).ToArray();

    [Fact]
    public void Score_figures_carry_error_bars_reference_lines_in_their_own_colours_and_the_crossing()
    {
        var points = new[]
        {
            Point("pyramidkv/patched", "p=0.1", 0.9, 0.95, 0.85, 1.0), Point("pyramidkv/patched", "p=0.5", 0.5, 0.5, 0.4, 0.6),
            Point("pyramidkv/naive", "p=0.1", 0.9, 0.6), Point("pyramidkv/naive", "p=0.5", 0.5, 0.3),
        };
        var fig = SweepFigures.ScoreVs(points, "Recall", fullScore: 1.0, chance: 0.05);
        var data = ((JsonObject)JsonNode.Parse(fig.ToJson())!)["data"]!.AsArray();
        var patched = data.Single(t => (string)t!["name"]! == "pyramidkv/patched")!;
        Assert.Equal([50.0, 90], Doubles(patched["x"]));
        var err = patched["error_y"]!;
        Assert.Equal("data", (string)err["type"]!);
        Assert.False((bool)err["symmetric"]!);
        Assert.Equal([10.0, 5], Doubles(err["array"]).Select(v => Math.Round(v, 9)));       // hi − score, in points, sorted by footprint
        Assert.Equal([10.0, 10], Doubles(err["arrayminus"]).Select(v => Math.Round(v, 9))); // score − lo
        Assert.Null(data.Single(t => (string)t!["name"]! == "pyramidkv/naive")!["error_y"]); // no per-example scores, no bars

        // Reference lines: colours no method curve uses.
        var methodColors = data.Where(t => t!["mode"]?.GetValue<string>() == "lines+markers").Select(t => (string)t!["line"]!["color"]!).ToList();
        Assert.Equal([SweepFigures.MethodColors[0], SweepFigures.MethodColors[1]], methodColors);
        foreach (var (name, color) in new[] { ("full attention", SweepFigures.FullAttentionColor), ($"{0.9:P0} of full attention", SweepFigures.ThresholdColor), ("chance", SweepFigures.ChanceColor) })
        {
            var line = data.Single(t => (string)t!["name"]! == name)!;
            Assert.Equal(color, (string)line["line"]!["color"]!);
            Assert.DoesNotContain(color, SweepFigures.MethodColors);
        }

        // The crossing: patched reaches 90 (of 100) between (50, 50) and (90, 95): at 50 + 40/45·40.
        var crossing = data.Single(t => (string)t!["name"]! == "pyramidkv/patched: reaches " + $"{0.9:P0}")!;
        Assert.False((bool)crossing["showlegend"]!);
        Assert.Equal(50 + 40.0 / 45 * 40, Doubles(crossing["x"])[0], 9);
        Assert.Equal(90, Doubles(crossing["y"])[0], 9);
        Assert.Equal(SweepFigures.MethodColors[0], (string)crossing["marker"]!["color"]!);
        Assert.DoesNotContain(data, t => ((string)t!["name"]!).StartsWith("pyramidkv/naive: reaches")); // naive never reaches 90

        // With the critical footprint's interval, the crossing gets a horizontal bar.
        var crit = new KvNotebooks.Evaluation.CategoryCritical("Recall", 1, 0.05, 2, new KvNotebooks.Footprint.CriticalFootprintResult(0.855, KvNotebooks.Footprint.CriticalKind.Exact))
        {
            Interval = new(new(0.8, KvNotebooks.Footprint.CriticalKind.Exact), new(0.9, KvNotebooks.Footprint.CriticalKind.Above), 0.02, 2000),
        };
        var withCi = ((JsonObject)JsonNode.Parse(SweepFigures.ScoreVs(points, "Recall", 1.0, criticals: new Dictionary<string, KvNotebooks.Evaluation.CategoryCritical> { ["pyramidkv/patched"] = crit }).ToJson())!)["data"]!.AsArray();
        var bar = withCi.Single(t => ((string)t!["name"]!).StartsWith("pyramidkv/patched: reaches"))!["error_x"]!;
        double at = 50 + 40.0 / 45 * 40;
        Assert.Equal(at - 80, Doubles(bar["arrayminus"])[0], 9);
        Assert.Equal(90 - at, Doubles(bar["array"])[0], 9);

        // A style function sets each curve's colour and dash, and its crossing takes the same colour.
        var styled = ((JsonObject)JsonNode.Parse(SweepFigures.ScoreVs(points, "Recall", 1.0,
            style: label => label.EndsWith("patched") ? ("#123456", "dash") : ("#654321", "dot")).ToJson())!)["data"]!.AsArray();
        var p = styled.Single(t => (string)t!["name"]! == "pyramidkv/patched")!;
        Assert.Equal(("#123456", "dash"), ((string)p["line"]!["color"]!, (string)p["line"]!["dash"]!));
        Assert.Equal("dot", (string)styled.Single(t => (string)t!["name"]! == "pyramidkv/naive")!["line"]!["dash"]!);
        Assert.Equal("#123456", (string)styled.Single(t => ((string)t!["name"]!).StartsWith("pyramidkv/patched: reaches"))!["marker"]!["color"]!);
    }

    [Fact]
    public void PairedDifferences_draw_each_series_with_its_interval_and_mark_the_resolved_points()
    {
        static KvNotebooks.Evaluation.Estimate E(double v, double lo, double hi) => new(v, 0.05, lo, hi, 20);
        var cmp = new[]
        {
            new KvNotebooks.Evaluation.CategoryComparison("Recall", "p=0.1", 2048, 512, 0.9, 0.9, E(0, -0.05, 0.05), E(0, -0.1, 0.1)),
            new KvNotebooks.Evaluation.CategoryComparison("Recall", "p=0.9", 2048, 512, 0.9, 0.6, E(0.3, 0.1, 0.5), E(0.3, 0.0, 0.6)),
            new KvNotebooks.Evaluation.CategoryComparison("Recall", "p=0.9", 4096, 1024, 0.8, 0.4, E(0.4, 0.2, 0.6), E(0.4, 0.1, 0.7)),
        };
        var fig = SweepFigures.PairedDifferences(cmp.Select(c => ($"{c.Context} tokens", c)), "patched − naive", "difference (points)");
        var data = ((JsonObject)JsonNode.Parse(fig.ToJson())!)["data"]!.AsArray();
        var k2 = data.Single(t => (string)t!["name"]! == "2048 tokens")!;
        Assert.Equal(["p=0.1", "p=0.9"], k2["x"]!.AsArray().Select(v => (string)v!));
        Assert.Equal([0.0, 30], Doubles(k2["y"]).Select(v => Math.Round(v, 9)));
        Assert.Equal([5.0, 20], Doubles(k2["error_y"]!["array"]).Select(v => Math.Round(v, 9)));      // hi − value
        Assert.Equal([5.0, 20], Doubles(k2["error_y"]!["arrayminus"]).Select(v => Math.Round(v, 9))); // value − lo
        // the interval around 0 holds zero (open marker); [0.1, 0.5] does not (filled)
        Assert.Equal(["circle-open", "circle"], k2["marker"]!["symbol"]!.AsArray().Select(v => (string)v!));
        Assert.Single(data.Single(t => (string)t!["name"]! == "4096 tokens")!["x"]!.AsArray());
        var zero = data.Single(t => (string)t!["name"]! == "no difference")!;
        Assert.Equal([0.0, 0], Doubles(zero["y"]));
        Assert.Equal(SweepFigures.FullAttentionColor, (string)zero["line"]!["color"]!);
    }

    [Fact]
    public void Grid_puts_each_panel_on_its_own_axes_and_shares_legend_entries()
    {
        var a = Figure.Line("Recall", "footprint (%)", "score (%)").AddLine("duo", [1, 2], [3, 4]).AddLine("prulong", [1, 2], [5, 6]);
        var b = Figure.Line("RAG", "footprint (%)", "RAG score (%)").AddLine("duo", [1, 2], [7, 8]);
        var c = Figure.Line("ICL", "peak (%)", "ICL score (%)").AddLine("locret", [1], [9]);
        var json = (JsonObject)JsonNode.Parse(Figure.Grid("Fig. 3", [a, b, c], columns: 2).ToJson())!;
        var data = json["data"]!.AsArray();
        var layout = json["layout"]!;
        Assert.Equal(2, (int)layout["grid"]!["rows"]!);
        Assert.Equal(2, (int)layout["grid"]!["columns"]!);
        Assert.Equal(["x", "x", "x2", "x3"], data.Select(t => (string)t!["xaxis"]!));
        Assert.Equal(["y", "y", "y2", "y3"], data.Select(t => (string)t!["yaxis"]!));
        Assert.Equal([7.0, 8], Doubles(data[2]!["y"]));
        // "duo" appears once in the legend; the second panel's duo shares its group
        Assert.Null(data[0]!["showlegend"]);
        Assert.False((bool)data[2]!["showlegend"]!);
        Assert.Equal("duo", (string)data[2]!["legendgroup"]!);
        Assert.Null(data[3]!["showlegend"]);
        Assert.Equal("RAG score (%)", (string)layout["yaxis2"]!["title"]!["text"]!);
        Assert.Equal("peak (%)", (string)layout["xaxis3"]!["title"]!["text"]!);
        var captions = layout["annotations"]!.AsArray();
        Assert.Equal(["Recall", "RAG", "ICL"], captions.Select(x => (string)x!["text"]!));
        Assert.Equal("x3 domain", (string)captions[2]!["xref"]!);
        Assert.Throws<ArgumentException>(() => Figure.Grid("empty", [], 2));
    }
}
