using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Validation;

namespace KvNotebooks.Evaluation;

/// <summary>
/// Reads a sweep's sidecar (<c>FILE.config.json</c>: <c>{"runs": [ … ]}</c>, one record per invocation), which the
/// sweep appends to and rewrites. Checked before use: an object with a <c>runs</c> list of objects whose known
/// keys have their types (strings, counts ≥ 0, <c>finished</c> a string or null). Unknown keys are kept.
/// </summary>
public static class SweepSidecar
{
    /// <summary>Sidecars larger than this are refused before reading (each run adds a few KB).</summary>
    public const long MaxFileBytes = 64 << 20;

    private static readonly string[] Strings = ["command", "model", "model_dir", "model_sha256", "commit", "started", "machine"];
    private static readonly string[] Counts = ["rows_planned", "rows_skipped", "rows_run"];

    /// <summary>The runs recorded in <paramref name="path"/>, as a mutable list (an empty one when the file is absent).</summary>
    public static JsonArray Load(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) return [];
        var bytes = InputFile.ReadAllBytes(path, "sweep sidecar", MaxFileBytes);
        using (var doc = StrictJson.Parse(bytes, path))
        {
            var root = new JsonField(doc.RootElement, path);
            if (root.Kind != JsonValueKind.Object) throw root.Error($"must be a JSON object with a \"runs\" list{root.Got()}");
            foreach (var run in root["runs"].Items())
            {
                if (run.Kind != JsonValueKind.Object) throw run.Error($"a run must be an object{run.Got()}");
                foreach (var key in Strings) run[key].OptionalString();
                foreach (var key in Counts) if (!run[key].IsMissing) run[key].Int(0, int.MaxValue);
                run["finished"].OptionalString();
                run["interrupted"].Bool(false);
                if (!run["grid"].IsMissing && run["grid"].Kind != JsonValueKind.Object) throw run["grid"].Error($"must be an object{run["grid"].Got()}");
                foreach (var key in new[] { "configs", "notes" })
                    if (!run[key].IsMissing) foreach (var item in run[key].Items()) item.String();
            }
        }
        return (JsonArray)StrictJson.ParseNode(bytes, path)!["runs"]!.DeepClone();
    }
}
