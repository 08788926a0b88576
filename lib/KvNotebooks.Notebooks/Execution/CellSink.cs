using System.Text;
using System.Text.Json.Nodes;
using Microsoft.DotNet.Interactive.Formatting;

namespace KvNotebooks.Notebooks.Execution;

/// <summary>
/// Collects the outputs of the cell being run: captured stdout/stderr become <c>stream</c> outputs,
/// <c>display(…)</c> calls become <c>display_data</c>. Pending stream text is flushed before each display
/// so the order of prints and displays is kept.
/// </summary>
internal sealed class CellSink
{
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly PathScrubber _scrubber;
    private TextWriter? _savedOut, _savedErr;

    public CellSink(PathScrubber scrubber) => _scrubber = scrubber;

    public JsonArray Outputs { get; private set; } = [];

    /// <summary>Starts capturing the console for a new cell.</summary>
    public void BeginCell()
    {
        Outputs = [];
        _stdout.Clear();
        _stderr.Clear();
        _savedOut = Console.Out;
        _savedErr = Console.Error;
        Console.SetOut(TextWriter.Synchronized(new StringWriter(_stdout)));
        Console.SetError(TextWriter.Synchronized(new StringWriter(_stderr)));
    }

    /// <summary>Stops capturing and restores the console (progress printing happens between cells).</summary>
    public void EndCell()
    {
        FlushStreams();
        if (_savedOut is not null) Console.SetOut(_savedOut);
        if (_savedErr is not null) Console.SetError(_savedErr);
        _savedOut = _savedErr = null;
    }

    public void FlushStreams()
    {
        Console.Out.Flush();
        Console.Error.Flush();
        Flush(_stdout, "stdout");
        Flush(_stderr, "stderr");
    }

    private void Flush(StringBuilder sb, string name)
    {
        string text;
        lock (sb) { text = sb.ToString().Replace("\r\n", "\n"); sb.Clear(); }
        if (text.Length > 0) Outputs.Add(Outputs_Stream(name, text));
    }

    private JsonObject Outputs_Stream(string name, string text) => KvNotebooks.Notebooks.Outputs.Stream(name, _scrubber.Scrub(text));

    public void Display(object? value, string[] mimeTypes)
    {
        FlushStreams();
        Outputs.Add(KvNotebooks.Notebooks.Outputs.DisplayData(Format(value, mimeTypes)));
    }

    public void Result(object? value, int executionCount)
    {
        FlushStreams();
        Outputs.Add(KvNotebooks.Notebooks.Outputs.ExecuteResult(Format(value, []), executionCount));
    }

    public void Error(JsonObject error)
    {
        FlushStreams();
        Outputs.Add(error);
    }

    /// <summary>The value in the requested MIME types, else its preferred ones plus text/plain.</summary>
    internal List<(string Mime, string Value)> Format(object? value, string[] mimeTypes)
    {
        if (value is null) return [("text/plain", "<null>")];
        IEnumerable<string> mimes = mimeTypes is { Length: > 0 }
            ? mimeTypes
            : Formatter.GetPreferredMimeTypesFor(value.GetType()).Append(PlainTextFormatter.MimeType);
        var data = new List<(string, string)>();
        foreach (var mime in mimes.Distinct())
        {
            string text = value.ToDisplayString(mime).Replace("\r\n", "\n");
            if (mime == PlainTextFormatter.MimeType) text = _scrubber.Scrub(text);
            data.Add((mime, text));
        }
        return data;
    }
}
