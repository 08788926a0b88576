using KvNotebooks.Reports;
using KvNotebooks.Tests.Notebooks;
using Microsoft.DotNet.Interactive.Formatting;

namespace KvNotebooks.Tests.Reports;

[Collection(NotebookCollection.Name)] // uses the process-wide Formatter
public sealed class TableTests
{
    private sealed record Row(string Method, double Footprint, int Budget);

    [Fact]
    public void Records_become_one_column_per_property()
    {
        var t = new[] { new Row("full", 1.0, 100), new Row("snap, kv", 1.0 / 3, 20) }.ToTable();
        Assert.Equal(["Method", "Footprint", "Budget"], t.Columns);
        Assert.Equal("Method,Footprint,Budget\nfull,1,100\n\"snap, kv\",0.3333333333333333,20\n", t.ToCsv());
        Assert.Contains("<thead><tr><th>Method</th><th>Footprint</th><th>Budget</th></tr></thead>", t.ToHtml());
        Assert.Contains("<td style=\"text-align:right\">0.333333</td>", t.ToHtml());
        Assert.Equal("Method    Footprint  Budget\n--------  ---------  ------\nfull      1          100   \nsnap, kv  0.333333   20    ", t.ToText());
    }

    [Fact]
    public void Display_prefers_html_csv_and_plain_text()
    {
        Formatter.ResetToDefault();
        var t = Table.Of(new[] { 1, 2 });
        Assert.Equal(["value"], t.Columns);
        var preferred = Formatter.GetPreferredMimeTypesFor(typeof(Table)).ToList();
        Assert.Contains("text/html", preferred);
        Assert.Contains("text/csv", preferred);
        Assert.Contains("text/plain", preferred);
        Assert.StartsWith("<table>", t.ToDisplayString("text/html"));
        Assert.Equal("value\n1\n2\n", t.ToDisplayString("text/csv"));
    }
}
