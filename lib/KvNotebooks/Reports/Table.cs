using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;

namespace KvNotebooks.Reports;

/// <summary>
/// A list of records shown as a real column table (one column per public property), unlike the default
/// formatter's index/value tree. Displays as <c>text/html</c>, <c>text/plain</c> (aligned columns) and
/// <c>text/csv</c>. Build with <see cref="Of{T}"/> or <c>rows.ToTable()</c>.
/// </summary>
[TypeFormatterSource(typeof(NotebookDisplay), PreferredMimeTypes = [NotebookDisplay.Html, CsvMime, NotebookDisplay.PlainText])]
public sealed class Table
{
    public const string CsvMime = "text/csv";

    public Table(IReadOnlyList<string> columns, IReadOnlyList<object?[]> rows)
    {
        if (rows.Any(r => r.Length != columns.Count))
            throw new ArgumentException($"every row needs {columns.Count} values (one per column)");
        Columns = columns;
        Rows = rows;
    }

    public IReadOnlyList<string> Columns { get; }
    /// <summary>Raw cell values, row-major.</summary>
    public IReadOnlyList<object?[]> Rows { get; }

    /// <summary>One column per public readable instance property of <typeparamref name="T"/>, in declaration order.</summary>
    public static Table Of<T>(IEnumerable<T> rows)
    {
        var props = typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanRead && p.GetIndexParameters().Length == 0).ToArray();
        if (props.Length == 0 || IsScalar(typeof(T)))
            return new Table(["value"], rows.Select(r => new object?[] { r }).ToList());
        return new Table(props.Select(p => p.Name).ToList(), rows.Select(r => props.Select(p => p.GetValue(r)).ToArray()).ToList());
    }

    private static bool IsScalar(Type t) => t.IsPrimitive || t == typeof(string) || t == typeof(decimal) || t.IsEnum;

    /// <summary>Cell text for display: doubles with 6 significant digits, invariant culture.</summary>
    public static string Cell(object? v) => v switch
    {
        null => "",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        float f => f.ToString("G6", CultureInfo.InvariantCulture),
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    private static string CsvCell(object? v)
    {
        string s = v switch
        {
            null => "",
            double d => d.ToString("R", CultureInfo.InvariantCulture),
            float f => f.ToString("R", CultureInfo.InvariantCulture),
            IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
            _ => v.ToString() ?? "",
        };
        return s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
    }

    public string ToHtml()
    {
        var sb = new StringBuilder("<table><thead><tr>");
        foreach (var c in Columns) sb.Append("<th>").Append(WebUtility.HtmlEncode(c)).Append("</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var row in Rows)
        {
            sb.Append("<tr>");
            foreach (var v in row)
                sb.Append(v is IConvertible and not string and not char and not bool ? "<td style=\"text-align:right\">" : "<td>")
                  .Append(WebUtility.HtmlEncode(Cell(v))).Append("</td>");
            sb.Append("</tr>");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    public string ToText()
    {
        var cells = Rows.Select(r => r.Select(Cell).ToArray()).ToList();
        var widths = Columns.Select((c, i) => Math.Max(c.Length, cells.Count == 0 ? 0 : cells.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        sb.AppendJoin("  ", Columns.Select((c, i) => c.PadRight(widths[i]))).Append('\n');
        sb.AppendJoin("  ", widths.Select(w => new string('-', w))).Append('\n');
        foreach (var r in cells) sb.AppendJoin("  ", r.Select((v, i) => v.PadRight(widths[i]))).Append('\n');
        return sb.ToString().TrimEnd('\n');
    }

    public string ToCsv()
    {
        var sb = new StringBuilder();
        sb.AppendJoin(",", Columns.Select(CsvCell)).Append('\n');
        foreach (var r in Rows) sb.AppendJoin(",", r.Select(CsvCell)).Append('\n');
        return sb.ToString();
    }

    public override string ToString() => ToText();
}

/// <summary><c>rows.ToTable()</c>: a column table of any list of records.</summary>
public static class TableExtensions
{
    public static Table ToTable<T>(this IEnumerable<T> rows) => Table.Of(rows);
}
