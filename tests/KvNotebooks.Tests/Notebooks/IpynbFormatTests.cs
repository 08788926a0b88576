using System.Text.Json.Nodes;
using KvNotebooks.Notebooks;

namespace KvNotebooks.Tests.Notebooks;

public sealed class IpynbFormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-ipynb-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Notebook Load(string json)
    {
        string path = Path.Combine(_dir, "n.ipynb");
        File.WriteAllText(path, json);
        return Notebook.Load(path);
    }

    [Fact]
    public void Cell_kernel_comes_from_polyglot_metadata_then_legacy_metadata_then_selector_line_then_notebook_default()
    {
        var nb = Load("""
            {"cells": [
              {"cell_type": "code", "metadata": {"polyglot_notebook": {"kernelName": "pwsh"}, "dotnet_interactive": {"language": "fsharp"}}, "outputs": [], "source": "ls"},
              {"cell_type": "code", "metadata": {"dotnet_interactive": {"language": "fsharp"}}, "outputs": [], "source": "let x = 1"},
              {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["#!c#\n", "var y = 2;"]},
              {"cell_type": "code", "metadata": {}, "outputs": [], "source": "var z = 3;"},
              {"cell_type": "raw", "metadata": {}, "source": "raw text"}
            ], "metadata": {"kernelspec": {"name": ".net-csharp", "display_name": ".NET (C#)"}}, "nbformat": 4, "nbformat_minor": 4}
            """);
        Assert.Equal(["pwsh", "fsharp", "csharp", "csharp", "raw"], nb.Cells.Select(c => c.Kernel));
        Assert.Equal("var y = 2;", nb.Cells[2].Source);
        Assert.Equal(CellKind.Raw, nb.Cells[4].Kind);
    }

    [Fact]
    public void A_python_notebook_resolves_to_its_own_kernel_not_csharp()
    {
        var nb = Load("""{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": "print(1)"}], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 5}""");
        Assert.Equal("python3", nb.Cells[0].Kernel);
    }

    [Fact]
    public void Lines_and_serialisation_follow_nbformat()
    {
        Assert.Equal(["a\n", "b\n", "c"], IpynbFormat.ToLines("a\nb\nc").Select(n => n!.GetValue<string>()));
        Assert.Empty(IpynbFormat.ToLines(""));
        string text = IpynbFormat.Serialize(new JsonObject { ["b"] = 1, ["a"] = new JsonObject { ["z"] = "<x>", ["y"] = 2 } });
        Assert.Equal("{\n \"a\": {\n  \"y\": 2,\n  \"z\": \"<x>\"\n },\n \"b\": 1\n}\n", text);
    }

    [Fact]
    public void Bad_files_are_reported_with_their_name()
    {
        var e = Assert.Throws<KvNotebooks.Validation.InputException>(() => Load("{ not json"));
        Assert.Contains("n.ipynb: not valid JSON", e.Message);
        var e2 = Assert.Throws<KvNotebooks.Validation.InputException>(() => Load("""{"nbformat": 3, "cells": []}"""));
        Assert.Contains("nbformat 3", e2.Message);
    }
}
