using System.Text.Json.Nodes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;

namespace KvNotebooks.Notebooks.Execution;

/// <summary>
/// Turns the kernel's events into nbformat outputs, as Jupyter front ends record them: console text as
/// <c>stream</c> outputs (consecutive text of one stream joined), <c>display(…)</c> as <c>display_data</c>
/// (a later <c>DisplayedValueUpdated</c> replaces it in place, even in an earlier cell), a cell's last value
/// as <c>execute_result</c>, a failure as one <c>error</c> output. Machine paths are scrubbed from text.
/// Events arrive on the kernel's threads; everything here runs under one lock.
/// </summary>
internal sealed class OutputCollector(PathScrubber scrubber)
{
    private readonly object _lock = new();
    private readonly Dictionary<string, JsonObject> _displays = new(StringComparer.Ordinal);
    private JsonArray? _outputs;
    private readonly List<string> _warnings = [];
    private int _executionCount;

    public void BeginCell(int executionCount)
    {
        lock (_lock)
        {
            _outputs = [];
            _warnings.Clear();
            _executionCount = executionCount;
        }
    }

    /// <summary>Ends the cell: its outputs, with <paramref name="error"/> appended when it failed.</summary>
    public (JsonArray Outputs, JsonObject? Error) EndCell(JsonObject? error)
    {
        lock (_lock)
        {
            var outputs = _outputs ?? [];
            if (error is not null) outputs.Add(error);
            _outputs = null; // events that arrive after this (work left running by the cell) are dropped
            return (outputs, error);
        }
    }

    /// <summary>The compiler warnings of the cell that ran last ("(3,14): warning CS8632: …", positions in the cell):
    /// not outputs (our kernel reports them as diagnostics, not as text), but the official Jupyter kernel prints them to
    /// stderr, so a notebook that compiles with warnings would differ between the two.</summary>
    public IReadOnlyList<string> Warnings
    {
        get { lock (_lock) return [.. _warnings]; }
    }

    public void Add(KernelEvent e)
    {
        lock (_lock)
        {
            if (_outputs is null) return;
            switch (e)
            {
                case DiagnosticsProduced d:
                    foreach (var x in d.Diagnostics.Where(x => x.Severity.ToString() == "Warning"))
                    {
                        string w = $"({x.LinePositionSpan.Start.Line + 1},{x.LinePositionSpan.Start.Character + 1}): warning {x.Code}: {x.Message}";
                        if (!_warnings.Contains(w)) _warnings.Add(scrubber.Scrub(w));
                    }
                    break;
                case StandardOutputValueProduced o: AppendStream("stdout", Plain(o)); break;
                case StandardErrorValueProduced o: AppendStream("stderr", Plain(o)); break;
                case ErrorProduced o: AppendStream("stderr", Plain(o)); break; // as the Jupyter kernel sends it
                case DisplayedValueUpdated o when o.ValueId is not null && _displays.TryGetValue(o.ValueId, out var shown):
                    shown["data"] = Data(o.FormattedValues);
                    break;
                case DisplayedValueProduced or DisplayedValueUpdated:
                    var display = (DisplayEvent)e;
                    var output = Outputs.DisplayData(Formatted(display.FormattedValues));
                    if (display.ValueId is not null) _displays[display.ValueId] = output;
                    _outputs.Add(output);
                    break;
                case ReturnValueProduced { Value: not DisplayedValue } o: // display(x) as a last value is shown once, as Jupyter does
                    _outputs.Add(Outputs.ExecuteResult(Formatted(o.FormattedValues), _executionCount));
                    break;
            }
        }
    }

    private void AppendStream(string name, string text)
    {
        if (text.Length == 0) return;
        text = scrubber.Scrub(text.Replace("\r\n", "\n"));
        if (_outputs!.Count > 0 && _outputs[^1] is JsonObject last && last["output_type"]?.GetValue<string>() == "stream"
            && last["name"]?.GetValue<string>() == name)
            last["text"] = IpynbFormat.ToLines(Outputs.Text(last["text"]) + text);
        else
            _outputs.Add(Outputs.Stream(name, text));
    }

    private static string Plain(DisplayEvent e) =>
        e.FormattedValues.FirstOrDefault(v => v.MimeType == PlainTextFormatter.MimeType)?.Value ?? e.Value?.ToString() ?? "";

    private JsonObject Data(IEnumerable<FormattedValue> values) => Outputs.Data(Formatted(values));

    /// <summary>MIME type → text, CRLF normalised (the kernel's HTML uses CRLF), text/plain scrubbed.</summary>
    private List<(string Mime, string Value)> Formatted(IEnumerable<FormattedValue> values) =>
        values.Where(v => !v.SuppressDisplay)
            .Select(v =>
            {
                string text = (v.Value ?? "").Replace("\r\n", "\n");
                return (v.MimeType, v.MimeType == PlainTextFormatter.MimeType ? scrubber.Scrub(text) : text);
            })
            .ToList();

    /// <summary>
    /// The <c>error</c> output of a failed cell: compile errors as <c>CompilationError</c> with every error
    /// diagnostic (positions relative to the cell); an exception as its type name, message and the cell's own
    /// stack frames (no kernel internals, at most 20 lines); a failure the kernel reports without an exception
    /// (an unknown magic command, a cancelled cell) as <c>KernelError</c> with the kernel's message.
    /// </summary>
    public JsonObject ErrorOf(CommandFailed failed)
    {
        var e = failed.Exception;
        if (e is CodeSubmissionCompilationErrorException { InnerException: CompilationErrorException compile })
        {
            var lines = compile.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)
                .Select(d => scrubber.Scrub(d.ToString())).ToList();
            if (lines.Count == 0) lines.Add(scrubber.Scrub(compile.Message));
            return Outputs.Error("CompilationError", lines[0], lines);
        }
        if (e is null)
        {
            var lines = failed.Message.Replace("\r\n", "\n").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(scrubber.Scrub).ToList();
            if (lines.Count == 0) lines.Add("the kernel reported a failure without a message");
            return Outputs.Error("KernelError", lines[0], lines);
        }
        return RuntimeError(e);
    }

    private JsonObject RuntimeError(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null)
            e = e.InnerException!;
        var lines = e.ToString().Split('\n').Select(l => l.TrimEnd('\r'))
            .Where(l => !(l.StartsWith("   at Microsoft.CodeAnalysis.", StringComparison.Ordinal)
                       || l.StartsWith("   at Microsoft.DotNet.Interactive.", StringComparison.Ordinal)
                       || l.StartsWith("   at System.Runtime.CompilerServices.", StringComparison.Ordinal)
                       || l.StartsWith("   at System.Threading.", StringComparison.Ordinal)
                       || l.StartsWith("--- End of stack trace from previous location", StringComparison.Ordinal)))
            .Select(scrubber.Scrub)
            .ToList();
        if (lines.Count > 20) lines = [.. lines.Take(20), $"   … {lines.Count - 20} more lines"];
        return Outputs.Error(e.GetType().Name, scrubber.Scrub(e.Message), lines);
    }
}
