using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Validation;

namespace KvNotebooks.Notebooks;

/// <summary>
/// Reads the Polyglot .dib text format (notebooks.md §1): an optional <c>#!meta</c> block with kernelInfo
/// JSON, then cells that each start with a <c>#!&lt;kernel&gt;</c> line. Unknown <c>#!</c> lines (magic
/// commands) stay inside their cell. A .dib stores no outputs; it is turned into an in-memory .ipynb.
/// </summary>
public static class DibFormat
{
    /// <summary>Kernel names and aliases that start a new cell.</summary>
    public static readonly HashSet<string> KnownKernels = new(StringComparer.OrdinalIgnoreCase)
    {
        "csharp", "c#", "cs", "fsharp", "f#", "fs", "pwsh", "powershell", "javascript", "js", "html",
        "sql", "kql", "mermaid", "value", "markdown", "md", "http",
    };

    internal static Notebook Parse(string path, string text)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        var metadata = new JsonObject();
        string defaultKernel = IpynbFormat.DefaultKernel;
        int i = 0;

        // Optional "#!meta" block: one JSON line (possibly surrounded by blank lines).
        if (lines.Length > 0 && lines[0].Trim() == "#!meta")
        {
            i = 1;
            var jsonText = new List<string>();
            while (i < lines.Length && !IsSeparator(lines[i])) jsonText.Add(lines[i++]);
            string metaJson = string.Join("\n", jsonText).Trim();
            if (metaJson.Length > 0)
            {
                using (var doc = StrictJson.Parse(metaJson, path, field: "#!meta"))
                {
                    var meta = new JsonField(doc.RootElement, path, "#!meta");
                    if (meta.Kind != JsonValueKind.Object) throw meta.Error($"must be a JSON object{meta.Got()}");
                    if (meta["kernelInfo"] is { IsMissing: false } info)
                    {
                        if (info.Kind != JsonValueKind.Object) throw info.Error($"must be an object{info.Got()}");
                        info["defaultKernelName"].OptionalString();
                    }
                }
                var parsed = (JsonObject)JsonNode.Parse(metaJson)!;
                metadata["polyglot_notebook"] = parsed;
                if (parsed["kernelInfo"]?["defaultKernelName"]?.GetValue<string>() is { } k) defaultKernel = k;
            }
        }

        var cells = new List<NotebookCell>();
        string kernel = defaultKernel;
        var body = new List<string>();
        bool any = false;
        void Flush()
        {
            string content = string.Join("\n", body).Trim('\n');
            // Text before the first separator belongs to the default kernel; drop it when blank.
            if (any || content.Trim().Length > 0) cells.Add(MakeCell(kernel, content));
            body.Clear();
        }
        for (; i < lines.Length; i++)
        {
            if (IsSeparator(lines[i]))
            {
                Flush();
                kernel = lines[i].Trim()[2..];
                any = true;
                continue;
            }
            body.Add(lines[i]);
        }
        Flush();

        var json = new JsonObject
        {
            ["cells"] = new JsonArray(cells.Select(c => (JsonNode)c.Json).ToArray()),
            ["metadata"] = metadata,
            ["nbformat"] = 4,
            ["nbformat_minor"] = 5,
        };
        return new Notebook(path, json, cells, fromDib: true);
    }

    private static bool IsSeparator(string line)
    {
        string t = line.TrimEnd();
        return t.StartsWith("#!", StringComparison.Ordinal) && t.Length > 2 && !t.Contains(' ') && KnownKernels.Contains(t[2..]);
    }

    private static NotebookCell MakeCell(string kernel, string content)
    {
        string k = IpynbFormat.NormalizeKernel(kernel);
        if (k == "markdown")
        {
            var md = new JsonObject { ["cell_type"] = "markdown", ["metadata"] = new JsonObject(), ["source"] = IpynbFormat.ToLines(content) };
            return new NotebookCell(CellKind.Markdown, content, "markdown", md);
        }
        var code = new JsonObject
        {
            ["cell_type"] = "code",
            ["execution_count"] = null,
            ["metadata"] = new JsonObject
            {
                ["dotnet_interactive"] = new JsonObject { ["language"] = k },
                ["polyglot_notebook"] = new JsonObject { ["kernelName"] = k },
            },
            ["outputs"] = new JsonArray(),
            ["source"] = IpynbFormat.ToLines(content),
        };
        return new NotebookCell(CellKind.Code, content, k, code);
    }
}
