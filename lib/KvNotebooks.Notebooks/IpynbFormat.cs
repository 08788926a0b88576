using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Validation;

namespace KvNotebooks.Notebooks;

/// <summary>
/// Reads and writes Jupyter nbformat 4 with the Polyglot metadata namespaces (notebooks.md §1, §5).
/// Writing produces nbformat 4.5: every cell has an id, keys are sorted (as nbformat and VS Code do),
/// indentation is one space, and the file is replaced atomically.
/// </summary>
public static class IpynbFormat
{
    public const string DefaultKernel = "csharp";

    internal static Notebook Parse(string path, string text)
    {
        using (var doc = StrictJson.Parse(text, path)) Check(new JsonField(doc.RootElement, path));
        var json = (JsonObject)JsonNode.Parse(text)!;
        var cellsJson = (JsonArray)json["cells"]!;

        string defaultKernel = DefaultKernelOf(json);
        var cells = new List<NotebookCell>();
        foreach (var node in cellsJson)
        {
            var cell = (JsonObject)node!;
            string type = cell["cell_type"]?.GetValue<string>() ?? "code";
            string source = JoinSource(cell["source"]);
            switch (type)
            {
                case "markdown": cells.Add(new NotebookCell(CellKind.Markdown, source, "markdown", cell)); break;
                case "raw": cells.Add(new NotebookCell(CellKind.Raw, source, "raw", cell)); break;
                default:
                    string kernel = cell["metadata"]?["polyglot_notebook"]?["kernelName"]?.GetValue<string>()
                        ?? cell["metadata"]?["dotnet_interactive"]?["language"]?.GetValue<string>()
                        ?? defaultKernel;
                    (kernel, source) = ApplySelectorLine(kernel, source);
                    cells.Add(new NotebookCell(CellKind.Code, source, NormalizeKernel(kernel), cell));
                    break;
            }
        }
        return new Notebook(path, json, cells, fromDib: false);
    }

    /// <summary>The nbformat 4 structure the reader and the runner rely on, checked up front so that reading
    /// it later cannot fail: each key that is there has the type nbformat gives it.</summary>
    private static void Check(JsonField root)
    {
        if (root.Kind != JsonValueKind.Object) throw root.Error($"top level must be a JSON object{root.Got()}");
        if (!root["nbformat"].IsMissing && root["nbformat"].Int(0, 1000, plain: true) is var major && major != 4)
            throw root["nbformat"].Error($"nbformat {major} is not supported (expected 4)");
        if (!root["nbformat_minor"].IsMissing) root["nbformat_minor"].Int(0, 1000, plain: true);
        var meta = Object(root["metadata"]);
        if (meta is { } m)
        {
            Object(m["kernelspec"])?["name"].OptionalString();
            if (Object(m["polyglot_notebook"]) is { } poly && Object(poly["kernelInfo"]) is { } info) info["defaultKernelName"].OptionalString();
        }
        if (root["cells"].Kind != JsonValueKind.Array) throw root["cells"].Error($"no 'cells' array{root["cells"].Got()}");
        foreach (var cell in root["cells"].Items())
        {
            if (cell.Kind != JsonValueKind.Object) throw cell.Error($"a cell must be an object{cell.Got()}");
            if (cell["cell_type"].OptionalString() is { } type && type is not ("code" or "markdown" or "raw"))
                throw cell["cell_type"].Error($"cell_type '{StrictJson.Printable(type)}' is not code, markdown or raw");
            var source = cell["source"];
            if (source.Kind == JsonValueKind.Array) foreach (var line in source.Items()) line.String();
            else source.OptionalString();
            cell["id"].OptionalString();
            if (!cell["execution_count"].IsMissing) cell["execution_count"].Int(0, int.MaxValue, plain: true);
            if (!cell["outputs"].IsMissing)
                foreach (var output in cell["outputs"].Items())
                    if (output.Kind != JsonValueKind.Object) throw output.Error($"an output must be an object{output.Got()}");
            if (Object(cell["metadata"]) is { } cm)
            {
                if (Object(cm["polyglot_notebook"]) is { } p) p["kernelName"].OptionalString();
                if (Object(cm["dotnet_interactive"]) is { } d) d["language"].OptionalString();
            }
        }
    }

    /// <summary>The field when it is an object, null when absent or null, an error otherwise.</summary>
    private static JsonField? Object(JsonField f) =>
        f.IsMissing ? null : f.Kind == JsonValueKind.Object ? f : throw f.Error($"must be an object{f.Got()}");

    /// <summary>Notebook default kernel: polyglot kernelInfo, else kernelspec (".net-csharp" → csharp), else csharp.</summary>
    private static string DefaultKernelOf(JsonObject json)
    {
        if (json["metadata"]?["polyglot_notebook"]?["kernelInfo"]?["defaultKernelName"]?.GetValue<string>() is { } k) return k;
        if (json["metadata"]?["kernelspec"]?["name"]?.GetValue<string>() is { } spec)
            return spec.StartsWith(".net-", StringComparison.Ordinal) ? spec[5..] : spec;
        return DefaultKernel;
    }

    /// <summary>A first line <c>#!csharp</c> / <c>#!fsharp</c> … selects the cell's kernel (and is not code).</summary>
    internal static (string Kernel, string Source) ApplySelectorLine(string kernel, string source)
    {
        if (!source.StartsWith("#!", StringComparison.Ordinal)) return (kernel, source);
        int nl = source.IndexOf('\n');
        string first = (nl < 0 ? source : source[..nl]).Trim();
        string name = first[2..];
        if (DibFormat.KnownKernels.Contains(name))
            return (name, nl < 0 ? "" : source[(nl + 1)..]);
        return (kernel, source);
    }

    internal static string NormalizeKernel(string kernel) => kernel.ToLowerInvariant() switch
    {
        "c#" or "cs" or "csharp" or ".net-csharp" => "csharp",
        "f#" or "fs" or "fsharp" => "fsharp",
        "powershell" or "pwsh" => "pwsh",
        "js" or "javascript" => "javascript",
        "md" or "markdown" => "markdown",
        var other => other,
    };

    internal static string JoinSource(JsonNode? source) => source switch
    {
        null => "",
        JsonArray lines => string.Concat(lines.Select(l => l?.GetValue<string>() ?? "")).Replace("\r\n", "\n"),
        JsonValue v => v.GetValue<string>().Replace("\r\n", "\n"),
        _ => throw new InvalidDataException("cell source is neither a string nor a list of strings"),
    };

    /// <summary>nbformat multiline string: a list of lines, each but the last ending in "\n".</summary>
    public static JsonArray ToLines(string text)
    {
        var arr = new JsonArray();
        int start = 0;
        while (start < text.Length)
        {
            int nl = text.IndexOf('\n', start);
            if (nl < 0) { arr.Add(text[start..]); break; }
            arr.Add(text[start..(nl + 1)]);
            start = nl + 1;
        }
        return arr;
    }

    /// <summary>
    /// Makes the document a valid nbformat 4.5 Polyglot C# notebook: ids, kernelspec, language_info,
    /// kernelInfo, per-cell kernel metadata. Existing values are kept.
    /// </summary>
    public static void EnsurePolyglotMetadata(Notebook notebook)
    {
        var json = notebook.Json;
        json["nbformat"] = 4;
        json["nbformat_minor"] = 5;
        var meta = json["metadata"] as JsonObject ?? (JsonObject)(json["metadata"] = new JsonObject());
        meta["kernelspec"] ??= new JsonObject { ["display_name"] = ".NET (C#)", ["language"] = "C#", ["name"] = ".net-csharp" };
        meta["language_info"] ??= new JsonObject { ["name"] = "polyglot-notebook" };
        var poly = meta["polyglot_notebook"] as JsonObject ?? (JsonObject)(meta["polyglot_notebook"] = new JsonObject());
        poly["kernelInfo"] ??= new JsonObject
        {
            ["defaultKernelName"] = "csharp",
            ["items"] = new JsonArray(new JsonObject { ["aliases"] = new JsonArray(), ["name"] = "csharp" }),
        };

        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cell in notebook.Cells)
            if (cell.Json["id"]?.GetValue<string>() is { Length: > 0 } id) used.Add(id);
        for (int i = 0; i < notebook.Cells.Count; i++)
        {
            var cell = notebook.Cells[i].Json;
            if (cell["id"]?.GetValue<string>() is not { Length: > 0 })
            {
                string id = $"cell-{i}";
                for (int k = 1; used.Contains(id); k++) id = $"cell-{i}-{k}";
                used.Add(id);
                cell["id"] = id;
            }
            var cellMeta = cell["metadata"] as JsonObject ?? (JsonObject)(cell["metadata"] = new JsonObject());
            if (notebook.Cells[i].Kind == CellKind.Code)
            {
                var cp = cellMeta["polyglot_notebook"] as JsonObject ?? (JsonObject)(cellMeta["polyglot_notebook"] = new JsonObject());
                cp["kernelName"] ??= "csharp";
                var di = cellMeta["dotnet_interactive"] as JsonObject ?? (JsonObject)(cellMeta["dotnet_interactive"] = new JsonObject());
                di["language"] ??= "csharp";
                cell["outputs"] ??= new JsonArray();
                if (!cell.ContainsKey("execution_count")) cell["execution_count"] = null;
            }
        }
    }

    private static readonly JsonSerializerOptions WriteOptions = new()
    {
        WriteIndented = true,
        IndentSize = 1,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The document as text: keys sorted recursively, one-space indentation, trailing newline.</summary>
    public static string Serialize(JsonObject json) => Sorted(json)!.ToJsonString(WriteOptions) + "\n";

    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Sorted).ToArray()),
        null => null,
        _ => node.DeepClone(),
    };

    /// <summary>Writes text to <paramref name="path"/> through a temp file in the same folder and a rename.</summary>
    public static void WriteAtomically(string path, string text)
    {
        string dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(dir);
        string tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        File.WriteAllText(tmp, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Ensures metadata and writes the notebook (with its current outputs) as nbformat 4.5.</summary>
    public static void Write(Notebook notebook, string path)
    {
        EnsurePolyglotMetadata(notebook);
        WriteAtomically(path, Serialize(notebook.Json));
    }
}
