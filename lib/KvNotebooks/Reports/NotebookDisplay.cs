namespace KvNotebooks.Reports;

/// <summary>
/// How <see cref="Figure"/> and <see cref="Table"/> show in a .NET Interactive notebook (VS Code's kernel,
/// the Jupyter kernel, <c>kvnb notebooks run</c>) without this library referencing any notebook package.
/// The kernel's Formatter looks on a type for an attribute <em>named</em> <c>TypeFormatterSourceAttribute</c>
/// (any namespace), creates its <c>FormatterSourceType</c>, calls <c>CreateTypeFormatters()</c> and uses
/// each returned object's <c>MimeType</c>, <c>Type</c> and <c>Format(object, TextWriter)</c> by name; the
/// attribute's <c>PreferredMimeTypes</c> are what <c>display(x)</c> and a cell's last value emit. This is
/// .NET Interactive's formatting-by-convention hook for libraries, so a notebook needs only
/// <c>#r "…/KvNotebooks.dll"</c>: no registration call, no second assembly, no coupling to the kernel's
/// Formatting version. A figure emits plotly JSON and text/plain, deliberately no text/html (VS Code would
/// show the HTML ahead of the PNG the runner adds).
/// </summary>
internal sealed class NotebookDisplay
{
    public const string Html = "text/html", PlainText = "text/plain";

    public IEnumerable<object> CreateTypeFormatters() =>
    [
        new MimeFormat<Figure>(Figure.PlotlyMime, f => f.ToJson()),
        new MimeFormat<Figure>(PlainText, f => f.ToString()),
        new MimeFormat<Table>(Html, t => t.ToHtml()),
        new MimeFormat<Table>(PlainText, t => t.ToText()),
        new MimeFormat<Table>(Table.CsvMime, t => t.ToCsv()),
    ];

    /// <summary>One MIME type of <typeparamref name="T"/>, in the shape the kernel reads by name.</summary>
    internal sealed class MimeFormat<T>(string mimeType, Func<T, string> render)
    {
        public string MimeType => mimeType;
        public Type Type => typeof(T);

        public bool Format(object instance, TextWriter writer)
        {
            if (instance is not T value) return false;
            writer.Write(render(value));
            return true;
        }
    }
}

/// <summary>Names the formatter source of a type, for the notebook kernel (read by name: see <see cref="NotebookDisplay"/>).</summary>
[AttributeUsage(AttributeTargets.Class)]
internal sealed class TypeFormatterSourceAttribute(Type formatterSourceType) : Attribute
{
    public Type FormatterSourceType { get; } = formatterSourceType;
    public string[]? PreferredMimeTypes { get; set; }
}
