using System.Text.Json;
using System.Text.Json.Nodes;

namespace KvNotebooks.Notebooks;

/// <summary>Builds nbformat output objects in exactly the kernel writer's shapes (notebooks.md §5).</summary>
public static class Outputs
{
    public const string PlotlyMime = "application/vnd.plotly.v1+json";

    public static JsonObject Stream(string name, string text) => new()
    {
        ["name"] = name,
        ["output_type"] = "stream",
        ["text"] = IpynbFormat.ToLines(text),
    };

    public static JsonObject DisplayData(IReadOnlyList<(string Mime, string Value)> data) => new()
    {
        ["data"] = Data(data),
        ["metadata"] = new JsonObject(),
        ["output_type"] = "display_data",
    };

    public static JsonObject ExecuteResult(IReadOnlyList<(string Mime, string Value)> data, int executionCount) => new()
    {
        ["data"] = Data(data),
        ["execution_count"] = executionCount,
        ["metadata"] = new JsonObject(),
        ["output_type"] = "execute_result",
    };

    public static JsonObject Error(string ename, string evalue, IEnumerable<string> traceback) => new()
    {
        ["ename"] = ename,
        ["evalue"] = evalue,
        ["output_type"] = "error",
        ["traceback"] = new JsonArray(traceback.Select(t => (JsonNode)t).ToArray()),
    };

    /// <summary>A MIME bundle: JSON MIME types as JSON values, images as one base64 string, text as line lists.</summary>
    public static JsonObject Data(IEnumerable<(string Mime, string Value)> data)
    {
        var obj = new JsonObject();
        foreach (var (mime, value) in data) obj[mime] = MimeValue(mime, value);
        return obj;
    }

    public static bool IsJsonMime(string mime) => mime == "application/json" || mime.EndsWith("+json", StringComparison.Ordinal);

    private static JsonNode? MimeValue(string mime, string value)
    {
        if (IsJsonMime(mime))
        {
            try { return JsonNode.Parse(value); }
            catch (JsonException) { return value; }
        }
        if (mime.StartsWith("image/", StringComparison.Ordinal) && mime != "image/svg+xml") return value;
        return IpynbFormat.ToLines(value);
    }

    /// <summary>Reads a MIME value back as text (line lists joined, JSON values serialised).</summary>
    public static string Text(JsonNode? value) => value switch
    {
        null => "",
        JsonArray a when a.All(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String) => string.Concat(a.Select(n => n!.GetValue<string>())),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => value.ToJsonString(),
    };
}
