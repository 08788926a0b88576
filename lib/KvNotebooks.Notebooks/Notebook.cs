using System.Text.Json.Nodes;
using KvNotebooks.Validation;

namespace KvNotebooks.Notebooks;

/// <summary>What a cell is: code (run by a kernel), markdown (rendered) or raw (left alone).</summary>
public enum CellKind { Code, Markdown, Raw }

/// <summary>
/// One cell of a notebook. <see cref="Json"/> is the cell's JSON object as read (so unknown keys and
/// metadata survive a round trip); <see cref="Source"/>, <see cref="Kernel"/> and the outputs are the
/// parsed view the runner works with.
/// </summary>
public sealed class NotebookCell
{
    internal NotebookCell(CellKind kind, string source, string kernel, JsonObject json)
    {
        Kind = kind;
        Source = source;
        Kernel = kernel;
        Json = json;
    }

    public CellKind Kind { get; }
    /// <summary>The cell text, lines joined with '\n' (a leading <c>#!csharp</c> selector line removed).</summary>
    public string Source { get; }
    /// <summary>The resolved kernel name of a code cell (<c>csharp</c>, <c>fsharp</c>, …); <c>markdown</c>/<c>raw</c> otherwise.</summary>
    public string Kernel { get; }
    /// <summary>The cell as nbformat JSON; the runner replaces its outputs and execution count.</summary>
    public JsonObject Json { get; }

    /// <summary>Outputs in nbformat shape (stream, display_data, execute_result, error).</summary>
    public JsonArray Outputs => Json["outputs"] as JsonArray ?? [];

    public int? ExecutionCount => Json["execution_count"]?.GetValue<int>();
}

/// <summary>
/// A Polyglot (.NET Interactive) notebook loaded from .ipynb or .dib. <see cref="Json"/> keeps the whole
/// original document so metadata the runner does not know about is written back unchanged.
/// </summary>
public sealed class Notebook
{
    internal Notebook(string path, JsonObject json, List<NotebookCell> cells, bool fromDib)
    {
        Path = path;
        Json = json;
        Cells = cells;
        FromDib = fromDib;
    }

    /// <summary>Full path of the file it was read from.</summary>
    public string Path { get; }
    public JsonObject Json { get; }
    public IReadOnlyList<NotebookCell> Cells { get; }
    /// <summary>True when read from a .dib (which stores no outputs: executed output goes to a sibling .ipynb).</summary>
    public bool FromDib { get; }

    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>Notebooks larger than this are refused before reading (executed ones with figures are a few MB).</summary>
    public const long MaxFileBytes = 512L << 20;

    /// <summary>Reads an .ipynb or .dib file (by extension): valid UTF-8, at most <see cref="MaxFileBytes"/>;
    /// every problem is an <see cref="InputException"/> naming the file and the field.</summary>
    public static Notebook Load(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        string ext = System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".ipynb" or ".dib"))
            throw new InputException(path, "", $"unknown notebook extension '{ext}' (expected .ipynb or .dib)");
        string text = InputFile.ReadAllText(path, "notebook", MaxFileBytes);
        return ext == ".ipynb" ? IpynbFormat.Parse(path, text) : DibFormat.Parse(path, text);
    }

    /// <summary>Where the executed notebook is written: the file itself for .ipynb, a sibling .ipynb for .dib.</summary>
    public string OutputPath => FromDib ? System.IO.Path.ChangeExtension(Path, ".ipynb") : Path;
}
