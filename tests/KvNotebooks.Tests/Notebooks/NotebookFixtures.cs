using System.Text.Json.Nodes;
using KvNotebooks.Notebooks;

namespace KvNotebooks.Tests.Notebooks;

/// <summary>
/// Runner tests change process-wide state (console, current directory, Formatter registrations), so they
/// run alone, after the parallel tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NotebookCollection
{
    public const string Name = "Notebook runner (process-wide state)";
}

/// <summary>Fixture notebooks copied into a fresh temp folder (the runner writes executed files back).</summary>
public sealed class NotebookFixtures : IDisposable
{
    public NotebookFixtures()
    {
        Dir = Directory.CreateTempSubdirectory("kvnb-nbtest-").FullName;
        Directory.CreateDirectory(Path.Combine(Dir, "lib"));
        // The library DLL next to the test assembly, reached by the notebooks as #r "lib/KvNotebooks.dll".
        File.Copy(Path.Combine(AppContext.BaseDirectory, "KvNotebooks.dll"), Path.Combine(Dir, "lib", "KvNotebooks.dll"));
        foreach (var f in Directory.GetFiles(FixtureDir)) File.Copy(f, Path.Combine(Dir, Path.GetFileName(f)));
    }

    public string Dir { get; }

    public string this[string name] => Path.Combine(Dir, name);

    public static string RepoRoot => TestPaths.RepoRoot;

    public static string FixtureDir => Path.Combine(RepoRoot, "tests", "KvNotebooks.Tests", "Notebooks", "fixtures");

    /// <summary>Writes a minimal .ipynb with the given C# code cells (no metadata at all).</summary>
    public string Write(string name, params string[] codeCells)
    {
        var cells = new JsonArray();
        foreach (var code in codeCells)
            cells.Add(new JsonObject
            {
                ["cell_type"] = "code", ["execution_count"] = null, ["metadata"] = new JsonObject(),
                ["outputs"] = new JsonArray(), ["source"] = IpynbFormat.ToLines(code),
            });
        string path = this[name];
        File.WriteAllText(path, new JsonObject { ["cells"] = cells, ["metadata"] = new JsonObject(), ["nbformat"] = 4, ["nbformat_minor"] = 4 }.ToJsonString());
        return path;
    }

    public static JsonObject Read(string path) => (JsonObject)JsonNode.Parse(File.ReadAllText(path))!;

    public static List<JsonObject> CodeCells(JsonObject nb) =>
        nb["cells"]!.AsArray().OfType<JsonObject>().Where(c => c["cell_type"]!.GetValue<string>() == "code").ToList();

    public static List<JsonObject> OutputsOf(JsonObject cell) => cell["outputs"]!.AsArray().OfType<JsonObject>().ToList();

    public static string Text(JsonNode? node) => Outputs.Text(node);

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
