using System.IO.Compression;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using KvNotebooks.Notebooks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using static KvNotebooks.Tests.Notebooks.NotebookFixtures;

namespace KvNotebooks.Tests.Notebooks;

[Collection(NotebookCollection.Name)]
public sealed class NotebookRunnerTests : IDisposable
{
    private readonly NotebookFixtures _fx = new();
    private static readonly RunnerOptions NoPng = new() { RepoRoot = RepoRoot, RenderPng = false };

    public void Dispose() => _fx.Dispose();

    [Fact]
    public void State_is_shared_and_stdout_display_and_last_value_become_outputs_in_order()
    {
        var result = new NotebookRunner(NoPng).Run(_fx["state.ipynb"]);
        Assert.True(result.Ok, result.Failure?.ToString());
        Assert.Equal(4, result.CodeCellsRun);

        var code = CodeCells(Read(_fx["state.ipynb"]));
        var first = OutputsOf(code[0]);
        Assert.Equal(["stream", "display_data", "stream"], first.Select(o => o["output_type"]!.GetValue<string>()));
        Assert.Equal("hello\n", Text(first[0]["text"]));
        Assert.Equal("shown", Text(first[1]["data"]!["text/plain"]));
        Assert.Equal("after display\n", Text(first[2]["text"]));

        var second = OutputsOf(code[1]);
        Assert.Equal("stderr", second.Single()["name"]!.GetValue<string>());

        // "x + 2" uses x from cell 1; its stale output from the file is replaced. As in VS Code and Jupyter
        // (the tool's notebook front ends), a number shows as the kernel's HTML, without text/plain.
        var value = OutputsOf(code[2]).Single();
        Assert.Equal("execute_result", value["output_type"]!.GetValue<string>());
        Assert.Equal(3, value["execution_count"]!.GetValue<int>());
        Assert.Equal(3, code[2]["execution_count"]!.GetValue<int>());
        var data = (JsonObject)value["data"]!;
        Assert.Equal(["text/html"], data.Select(p => p.Key));
        Assert.StartsWith("<div class=\"dni-plaintext\"><pre>42</pre></div>", Text(data["text/html"]));
        Assert.DoesNotContain("\\r", data["text/html"]!.ToJsonString());

        // "await Task.Delay(1)" without ';' has no value (void), like the kernel.
        var last = OutputsOf(code[3]);
        Assert.Equal("2\n", Text(last.Single()["text"]));
    }

    [Fact]
    public void Written_notebook_is_nbformat_4_5_with_polyglot_metadata_and_kept_unknown_keys()
    {
        new NotebookRunner(NoPng).Run(_fx["state.ipynb"]);
        var nb = Read(_fx["state.ipynb"]);
        Assert.Equal(4, nb["nbformat"]!.GetValue<int>());
        Assert.Equal(5, nb["nbformat_minor"]!.GetValue<int>());
        Assert.True(nb["metadata"]!["custom_notebook_key"]!["kept"]!.GetValue<bool>());
        Assert.Equal(".net-csharp", nb["metadata"]!["kernelspec"]!["name"]!.GetValue<string>());
        Assert.Equal("polyglot-notebook", nb["metadata"]!["language_info"]!["name"]!.GetValue<string>());
        Assert.Equal("csharp", nb["metadata"]!["polyglot_notebook"]!["kernelInfo"]!["defaultKernelName"]!.GetValue<string>());

        var cells = nb["cells"]!.AsArray().OfType<JsonObject>().ToList();
        var ids = cells.Select(c => c["id"]!.GetValue<string>()).ToList();
        Assert.All(ids, id => Assert.Matches("^[a-zA-Z0-9-_]+$", id));
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal("keep-this-id", ids[1]);
        Assert.Equal("cell-0", ids[0]);
        Assert.Equal(42, cells[1]["metadata"]!["custom"]!["answer"]!.GetValue<int>());

        foreach (var cell in cells)
        {
            if (cell["cell_type"]!.GetValue<string>() != "code")
            {
                Assert.Null(cell["outputs"]);
                continue;
            }
            Assert.Equal("csharp", cell["metadata"]!["polyglot_notebook"]!["kernelName"]!.GetValue<string>());
            Assert.Equal("csharp", cell["metadata"]!["dotnet_interactive"]!["language"]!.GetValue<string>());
            Assert.IsType<JsonArray>(cell["source"]);
            foreach (var o in OutputsOf(cell))
            {
                switch (o["output_type"]!.GetValue<string>())
                {
                    case "stream":
                        Assert.IsType<JsonArray>(o["text"]);
                        Assert.Contains(o["name"]!.GetValue<string>(), new[] { "stdout", "stderr" });
                        break;
                    case "display_data":
                        Assert.IsType<JsonObject>(o["data"]);
                        Assert.IsType<JsonObject>(o["metadata"]);
                        break;
                    case "execute_result":
                        Assert.IsType<JsonObject>(o["data"]);
                        Assert.IsType<JsonObject>(o["metadata"]);
                        Assert.NotNull(o["execution_count"]);
                        break;
                    default:
                        Assert.Fail($"unexpected output_type {o["output_type"]}");
                        break;
                }
            }
        }
        // One-space indentation and a trailing newline, like nbformat writes.
        string text = File.ReadAllText(_fx["state.ipynb"]);
        Assert.StartsWith("{\n \"cells\": [\n  {", text);
        Assert.EndsWith("}\n", text);
    }

    [Fact]
    public void Error_cell_stops_the_notebook_with_its_cell_number_and_no_machine_paths()
    {
        var result = new NotebookRunner(NoPng).Run(_fx["error.ipynb"]);
        Assert.False(result.Ok);
        var f = result.Failure!;
        Assert.Equal(3, f.CellNumber);
        Assert.Equal(2, f.CodeCellNumber);
        Assert.Equal("InvalidOperationException", f.ErrorName);
        Assert.StartsWith("cell 3 (code cell 2): InvalidOperationException: boom in ", f.ToString());
        Assert.Equal(2, result.CodeCellsRun);

        var code = CodeCells(Read(_fx["error.ipynb"]));
        var error = OutputsOf(code[1]).Single();
        Assert.Equal("error", error["output_type"]!.GetValue<string>());
        Assert.Equal("boom in data.csv", error["evalue"]!.GetValue<string>());
        string all = error.ToJsonString();
        Assert.DoesNotContain(_fx.Dir, all);
        Assert.DoesNotMatch(new Regex("\"(/[A-Za-z0-9._-]+){2,}/"), all);
        Assert.True(error["traceback"]!.AsArray().Count <= 21);

        // The cell after the failure did not run: its stale output and count are cleared.
        Assert.Empty(OutputsOf(code[2]));
        Assert.Null(code[2]["execution_count"]);
    }

    [Fact]
    public void Compilation_error_reports_cell_relative_diagnostics()
    {
        string path = _fx.Write("compile.ipynb", "var a = 1;", "int y = \"s\";", "a");
        var result = new NotebookRunner(NoPng).Run(path);
        Assert.Equal(2, result.Failure!.CellNumber);
        Assert.Equal(2, result.Failure.CodeCellNumber);
        Assert.Equal("CompilationError", result.Failure.ErrorName);
        Assert.StartsWith("(1,9): error CS0029", result.Failure.Message);
    }

    [Fact]
    public void Compiler_warnings_are_reported_with_their_cell_but_not_written_as_outputs()
    {
        // CS8632: a nullable annotation outside a #nullable context (the official kernel prints it to stderr)
        string path = _fx.Write("warn.ipynb", "var a = 1;", "string? s = null;\nConsole.WriteLine(s ?? \"none\");", "a");
        var result = new NotebookRunner(NoPng).Run(path);
        Assert.True(result.Ok, result.Failure?.ToString());
        var w = Assert.Single(result.Warnings);
        Assert.StartsWith("cell 2 (code cell 2): (1,7): warning CS8632", w);
        var outputs = OutputsOf(CodeCells(Read(path))[1]);
        Assert.Equal("none\n", Text(Assert.Single(outputs)["text"]));
        Assert.Empty(new NotebookRunner(NoPng).Run(_fx.Write("clean.ipynb", "var b = 2;", "b")).Warnings);
    }

    [Fact]
    public void Relative_reference_resolves_against_the_notebook_folder_and_cwd_is_that_folder()
    {
        // A DLL that no test assembly loaded: built here, placed in lib/ under the notebook's folder.
        var tree = CSharpSyntaxTree.ParseText("namespace Tiny; public static class Hello { public static string Say() => \"hi from tiny\"; }");
        var refs = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => Path.GetFileName(p) is "System.Runtime.dll" or "System.Private.CoreLib.dll")
            .Select(p => MetadataReference.CreateFromFile(p));
        var emit = CSharpCompilation.Create("Tiny", [tree], refs, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
            .Emit(Path.Combine(_fx.Dir, "lib", "Tiny.dll"));
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));

        string before = Directory.GetCurrentDirectory();
        string path = _fx.Write("ref.ipynb",
            "#r \"lib/Tiny.dll\"\nConsole.WriteLine(Tiny.Hello.Say());",
            "using System.IO;\nConsole.WriteLine(Directory.GetCurrentDirectory());\nConsole.WriteLine(File.Exists(\"ref.ipynb\"));");
        var result = new NotebookRunner(NoPng).Run(path);
        Assert.True(result.Ok, result.Failure?.ToString());
        Assert.Equal(before, Directory.GetCurrentDirectory());

        var code = CodeCells(Read(path));
        Assert.Equal("hi from tiny\n", Text(OutputsOf(code[0]).Single()["text"]));
        // The notebook folder is printed scrubbed (".", relative to itself) and relative files resolve.
        Assert.Equal(".\nTrue\n", Text(OutputsOf(code[1]).Single()["text"]));
    }

    [Fact]
    public void Nuget_reference_restores_a_package_and_loads_its_kernel_extension()
    {
        // A package made here: a library (lib/net10.0) and a kernel extension (interactive-extensions/dotnet)
        // that displays a line when loaded. It is restored from a local source into a private package folder.
        string version = $"1.0.{Environment.ProcessId}";
        string source = Directory.CreateDirectory(Path.Combine(_fx.Dir, "source")).FullName;
        string packages = Directory.CreateDirectory(Path.Combine(_fx.Dir, "packages")).FullName;
        string library = Compile("KvnbTinyLib", "namespace KvnbTiny; public static class Hello { public static string Say() => \"hi from the package\"; }");
        string extension = Compile("KvnbTinyExtension", """
            using Microsoft.DotNet.Interactive;
            namespace KvnbTiny;
            public sealed class Loaded : IKernelExtension
            {
                public System.Threading.Tasks.Task OnLoadAsync(Kernel kernel)
                {
                    KernelInvocationContext.Current?.Display("tiny extension loaded into " + kernel.Name, "text/plain");
                    return System.Threading.Tasks.Task.CompletedTask;
                }
            }
            """);
        using (var zip = ZipFile.Open(Path.Combine(source, $"KvnbTiny.{version}.nupkg"), ZipArchiveMode.Create))
        {
            using (var w = new StreamWriter(zip.CreateEntry("KvnbTiny.nuspec").Open()))
                w.Write($"""<?xml version="1.0"?><package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata><id>KvnbTiny</id><version>{version}</version><authors>kvnb tests</authors><description>test package</description></metadata></package>""");
            zip.CreateEntryFromFile(library, "lib/net10.0/KvnbTinyLib.dll");
            zip.CreateEntryFromFile(extension, "interactive-extensions/dotnet/KvnbTinyExtension.dll");
        }

        string? saved = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        Environment.SetEnvironmentVariable("NUGET_PACKAGES", packages);
        try
        {
            string path = _fx.Write("nuget.ipynb", $"#i \"nuget: {source}\"\n#r \"nuget: KvnbTiny, {version}\"", "KvnbTiny.Hello.Say()");
            var result = new NotebookRunner(NoPng).Run(path);
            Assert.True(result.Ok, result.Failure?.ToString());
            var code = CodeCells(Read(path));
            var first = OutputsOf(code[0]);
            Assert.Contains(first, o => Text(o["data"]?["text/html"]).Contains("Installed Packages") && Text(o["data"]?["text/html"]).Contains("KvnbTiny"));
            Assert.Contains(first, o => Text(o["data"]?["text/plain"]) == "tiny extension loaded into .NET");
            Assert.Equal("hi from the package", Text(OutputsOf(code[1]).Single()["data"]!["text/plain"]));
        }
        finally
        {
            Environment.SetEnvironmentVariable("NUGET_PACKAGES", saved);
        }
    }

    /// <summary>Compiles C# into a DLL in the fixture folder, against the framework and the kernel's assemblies.</summary>
    private string Compile(string name, string code)
    {
        var refs = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Append(typeof(Microsoft.DotNet.Interactive.Kernel).Assembly.Location)
            .Append(typeof(Microsoft.DotNet.Interactive.Formatting.Formatter).Assembly.Location)
            .Distinct().Select(p => MetadataReference.CreateFromFile(p));
        string dll = Path.Combine(_fx.Dir, name + ".dll");
        var emit = CSharpCompilation.Create(name, [CSharpSyntaxTree.ParseText(code)], refs, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
            .Emit(dll);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
        return dll;
    }

    [Fact]
    public void Unknown_magic_commands_and_other_kernels_fail_loudly()
    {
        string magic = _fx.Write("magic.ipynb", "var a = 1;", "#!time\na");
        var r1 = new NotebookRunner(NoPng).Run(magic);
        Assert.Equal((2, "KernelError"), (r1.Failure!.CodeCellNumber, r1.Failure.ErrorName));
        Assert.Contains("Unknown magic command '#!time'", r1.Failure.Message);

        string fsharp = _fx.Write("fsharp.ipynb", "#!fsharp\nlet x = 1");
        var r2 = new NotebookRunner(NoPng).Run(fsharp);
        Assert.Equal("UnsupportedKernel", r2.Failure!.ErrorName);
        Assert.Contains("fsharp", r2.Failure.Message);

        File.WriteAllText(_fx["python.ipynb"], """{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": "print(1)"}], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}}, "nbformat": 4, "nbformat_minor": 5}""");
        var r3 = new NotebookRunner(NoPng).Run(_fx["python.ipynb"]);
        Assert.Equal(("UnsupportedKernel", 1), (r3.Failure!.ErrorName, r3.Failure.CellNumber));
    }

    [Fact]
    public void A_cell_past_the_timeout_is_cancelled_and_stops_the_notebook_with_its_earlier_output_kept()
    {
        // The timeout counts compile time too: warm the compiler up first, so that only the wait runs past it.
        Assert.True(new NotebookRunner(NoPng).Run(_fx.Write("warm.ipynb", "var w = 1;")).Ok);
        string path = _fx.Write("hang.ipynb", "var a = 1;", "Console.WriteLine(\"before the wait\");\nawait Task.Delay(-1);", "a");
        var console = (Console.Out, Console.Error);
        var result = new NotebookRunner(NoPng with { CellTimeout = TimeSpan.FromSeconds(5) }).Run(path);
        Assert.Equal(console, (Console.Out, Console.Error)); // the abandoned cell's console capture is undone
        Assert.Equal((2, 2, "CellTimeout"), (result.Failure!.CellNumber, result.Failure.CodeCellNumber, result.Failure.ErrorName));
        Assert.Contains("did not finish within 5 s", result.Failure.Message);
        Assert.Contains("--cell-timeout", result.Failure.Message);
        Assert.Equal(2, result.CodeCellsRun);

        var code = CodeCells(Read(path));
        var outputs = OutputsOf(code[1]);
        Assert.Equal(["stream", "error"], outputs.Select(o => o["output_type"]!.GetValue<string>()));
        Assert.Equal("before the wait\n", Text(outputs[0]["text"]));
        Assert.Empty(OutputsOf(code[2]));

        // The abandoned cell keeps the kernel's console capture installed: a later notebook still gets its output.
        string after = _fx.Write("after.ipynb", "Console.WriteLine(\"still captured\");");
        var next = new NotebookRunner(NoPng).Run(after);
        Assert.True(next.Ok, next.Failure?.ToString());
        Assert.Equal("still captured\n", Text(OutputsOf(CodeCells(Read(after))[0]).Single()["text"]));
        Assert.Equal(console, (Console.Out, Console.Error));
    }

    [Fact]
    public void Dib_is_parsed_into_cells_and_executed_to_a_sibling_ipynb()
    {
        var nb = Notebook.Load(_fx["twin.dib"]);
        Assert.True(nb.FromDib);
        Assert.Equal([CellKind.Markdown, CellKind.Code, CellKind.Code], nb.Cells.Select(c => c.Kind));
        Assert.Equal("# Dib fixture", nb.Cells[0].Source);
        Assert.Equal("var greeting = \"hi\";\nConsole.WriteLine(greeting);", nb.Cells[1].Source);
        Assert.Equal("#!time\ngreeting.Length", nb.Cells[2].Source); // an unknown #! line stays in its cell
        Assert.Equal("csharp", nb.Json["metadata"]!["polyglot_notebook"]!["kernelInfo"]!["defaultKernelName"]!.GetValue<string>());

        File.WriteAllText(_fx["clean.dib"], "#!csharp\n\nvar g = \"hi\";\n\n#!markdown\n\nText\n\n#!csharp\n\ng.Length\n");
        var result = new NotebookRunner(NoPng).Run(_fx["clean.dib"]);
        Assert.True(result.Ok, result.Failure?.ToString());
        Assert.Equal(_fx["clean.ipynb"], result.OutputPath);
        var written = Read(_fx["clean.ipynb"]);
        Assert.Equal(".net-csharp", written["metadata"]!["kernelspec"]!["name"]!.GetValue<string>());
        Assert.Contains("<pre>2</pre>", Text(OutputsOf(CodeCells(written)[1]).Single()["data"]!["text/html"]));
    }

    [Fact]
    public void Figures_and_tables_from_the_library_display_with_their_mime_types_in_every_notebook_of_a_run()
    {
        var runner = new NotebookRunner(NoPng);
        // Twice in one runner: the second run follows Formatter.ResetToDefault(); the library's
        // formatting-by-convention attribute (no registration call) must bring the formatters back.
        for (int run = 0; run < 2; run++)
        {
            var result = runner.Run(_fx["figure.ipynb"]);
            Assert.True(result.Ok, result.Failure?.ToString());
            Assert.Equal(2, result.Figures);
            var code = CodeCells(Read(_fx["figure.ipynb"]));

            var fig = OutputsOf(code[0]).Single();
            Assert.Equal("display_data", fig["output_type"]!.GetValue<string>());
            var data = (JsonObject)fig["data"]!;
            Assert.Equal(["application/vnd.plotly.v1+json", "text/plain"], data.Select(p => p.Key).Order());
            var plotly = Assert.IsType<JsonObject>(data["application/vnd.plotly.v1+json"]);
            Assert.Equal(2, plotly["data"]!.AsArray().Count);
            Assert.Equal("KV footprint vs context", plotly["layout"]!["title"]!["text"]!.GetValue<string>());

            var heat = OutputsOf(code[1]).Single();
            Assert.Equal("execute_result", heat["output_type"]!.GetValue<string>());
            Assert.Equal("heatmap", heat["data"]!["application/vnd.plotly.v1+json"]!["data"]![0]!["type"]!.GetValue<string>());

            var table = OutputsOf(code[2]).Single()["data"]!;
            Assert.Contains("<th>Method</th><th>Footprint</th>", Text(table["text/html"]));
            Assert.Equal("Method,Footprint\nfull,1\nsnapkv,0.31\n", Text(table["text/csv"]));
            Assert.StartsWith("Method  Footprint", Text(table["text/plain"]));
        }
    }

    [Fact]
    public void Html_report_renders_markdown_code_and_outputs()
    {
        string htmlDir = Path.Combine(_fx.Dir, "html");
        var result = new NotebookRunner(NoPng with { HtmlDir = htmlDir }).Run(_fx["figure.ipynb"]);
        Assert.Equal(Path.Combine(htmlDir, "figure.html"), result.HtmlPath);
        string html = File.ReadAllText(result.HtmlPath!);
        Assert.Contains("<h1 id=\"figure-fixture\">Figure fixture</h1>", html);
        Assert.Contains("<code>KvNotebooks.Reports</code>", html);
        Assert.Contains("class=\"plotly-figure\"", html);
        Assert.Contains("<th>Method</th>", html);
        Assert.Contains("using KvNotebooks.Reports;", html);
    }
}
