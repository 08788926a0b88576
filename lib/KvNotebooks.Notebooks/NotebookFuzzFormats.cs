using System.Text;
using KvNotebooks.Validation.Fuzz;

namespace KvNotebooks.Notebooks;

/// <summary>The notebook formats under fuzz (.ipynb and .dib): a load is correct when the runner can use what it
/// got: every cell has its source, kernel, outputs and execution count, and the notebook serializes back.</summary>
public static class NotebookFuzzFormats
{
    public static IReadOnlyList<FuzzFormat> All { get; } = [Ipynb(), Dib()];

    private const string IpynbText = """
        {
         "cells": [
          {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": ["# Title\n", "Some *text*."]},
          {"cell_type": "code", "execution_count": 3, "id": "c1",
           "metadata": {"dotnet_interactive": {"language": "csharp"}, "polyglot_notebook": {"kernelName": "csharp"}},
           "outputs": [{"name": "stdout", "output_type": "stream", "text": ["42\n"]}],
           "source": ["#!csharp\n", "Console.WriteLine(6 * 7);"]},
          {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": "var x = 1;"},
          {"cell_type": "raw", "metadata": {}, "source": []}
         ],
         "metadata": {
          "kernelspec": {"display_name": ".NET (C#)", "language": "C#", "name": ".net-csharp"},
          "language_info": {"name": "polyglot-notebook"},
          "polyglot_notebook": {"kernelInfo": {"defaultKernelName": "csharp", "items": [{"aliases": [], "name": "csharp"}]}}
         },
         "nbformat": 4,
         "nbformat_minor": 5
        }
        """;

    private const string DibText = """
        #!meta

        {"kernelInfo":{"defaultKernelName":"csharp","items":[{"aliases":[],"name":"csharp"}]}}

        #!markdown

        # Title

        #!csharp

        var x = 6 * 7;
        x

        #!fsharp

        let y = 1
        """;

    private static string? Check(object? value)
    {
        var nb = (Notebook)value!;
        foreach (var c in nb.Cells)
        {
            if (c.Source is null || c.Kernel is null) return "a cell without source or kernel";
            _ = c.Outputs.Count;
            _ = c.ExecutionCount;
        }
        // What the runner does before writing the executed notebook.
        IpynbFormat.EnsurePolyglotMetadata(nb);
        _ = IpynbFormat.Serialize(nb.Json);
        return null;
    }

    private static FuzzFormat Ipynb() => new()
    {
        Name = "ipynb",
        Target = "n.ipynb",
        Seed = () => new Dictionary<string, byte[]> { ["n.ipynb"] = Encoding.UTF8.GetBytes(IpynbText) },
        Mutators = [.. Mutators.Bytes, .. Mutators.Json, .. Mutators.Json],
        Load = dir => Notebook.Load(Path.Combine(dir, "n.ipynb")),
        Check = Check,
    };

    private static FuzzFormat Dib() => new()
    {
        Name = "dib",
        Target = "n.dib",
        Seed = () => new Dictionary<string, byte[]> { ["n.dib"] = Encoding.UTF8.GetBytes(DibText) },
        Mutators =
        [
            .. Mutators.Bytes, .. Mutators.Lines("#!meta", "#!csharp", "#!markdown", "#!fsharp", "#!", "#!value", "{\"kernelInfo\": 1}"),
            .. Mutators.Json.Select(m => Mutators.InLine(m, line => line.StartsWith('{'))),
            .. Mutators.Json.Select(m => Mutators.InLine(m, line => line.StartsWith('{'))),
        ],
        Load = dir => Notebook.Load(Path.Combine(dir, "n.dib")),
        Check = Check,
    };
}
