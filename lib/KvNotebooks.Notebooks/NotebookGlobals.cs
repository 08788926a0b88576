using KvNotebooks.Notebooks.Execution;

namespace KvNotebooks.Notebooks;

/// <summary>
/// The globals object of every notebook script: its public members are top-level names in cells,
/// with the same call shapes as the .NET Interactive kernel's (so a notebook runs in VS Code too).
/// </summary>
public sealed class NotebookGlobals
{
    private readonly CellSink _sink;

    internal NotebookGlobals(CellSink sink) => _sink = sink;

    /// <summary>
    /// Shows a value as a <c>display_data</c> output: in the given MIME types, or in the type's preferred
    /// ones (Formatter) plus <c>text/plain</c>.
    /// </summary>
    public DisplayedValue display(object? value, params string[] mimeTypes)
    {
        _sink.Display(value, mimeTypes);
        return new DisplayedValue();
    }
}

/// <summary>Returned by <see cref="NotebookGlobals.display"/>, like the kernel's; <see cref="Update"/> does
/// nothing here (a headless run has no live view to update).</summary>
public sealed class DisplayedValue
{
    public void Update(object? value) { }
}
