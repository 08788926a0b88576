using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvNotebooks.Tasks;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.Evaluation;

/// <summary>
/// A fixed evaluation set: for each task, a number of examples at one context length, generated once
/// from fixed seeds and saved (gzip JSON lines, token ids) under data/eval/, so that scores stay
/// comparable even if a generator changes (a test regenerates them and fails on any drift).
/// </summary>
public sealed class EvalSet
{
    /// <summary>Seed base of the shipped sets (kept apart from training seeds, which come from <see cref="Pretrainer.SeedOf"/>).</summary>
    public const int DefaultSeed = 77_000_000;

    public EvalSet(int length, IReadOnlyList<TaskExample> examples)
    {
        Length = length;
        Examples = examples;
    }

    public int Length { get; }
    public IReadOnlyList<TaskExample> Examples { get; }

    public IEnumerable<TaskExample> For(string task) => Examples.Where(e => e.Task == task);

    /// <summary>Examples i = 0…n−1 of each task, seed = SeedOf(seedBase, task index in the suite, i).</summary>
    public static EvalSet Create(IEnumerable<LongContextTask> tasks, int length, int perTask, int seedBase = DefaultSeed)
    {
        var list = new List<TaskExample>();
        foreach (var t in tasks)
        {
            int ti = TaskSuite.All.ToList().IndexOf(t);
            for (int i = 0; i < perTask; i++) list.Add(t.Generate(Pretrainer.SeedOf(seedBase, ti, i), length, 1));
        }
        return new EvalSet(length, list);
    }

    /// <summary>The shipped set for this length (<paramref name="evalDir"/>/eval-N.jsonl.gz) when it holds at least
    /// <paramref name="perTask"/> examples of every task, else freshly generated ones (the same seeds).</summary>
    public static EvalSet LoadOrCreate(string evalDir, IReadOnlyList<LongContextTask> tasks, int length, int perTask)
    {
        string path = Path.Combine(evalDir, FileName(length));
        if (File.Exists(path))
        {
            var set = Load(path);
            if (tasks.All(t => set.For(t.Name).Count() >= perTask)) return set;
        }
        return Create(tasks, length, perTask);
    }

    /// <summary>The shipped file name for a length: eval-4096.jsonl.gz.</summary>
    public static string FileName(int length) => $"eval-{length}.jsonl.gz";

    private static readonly JsonSerializerOptions Json = new() { TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver() };

    private sealed record Line(
        [property: JsonPropertyName("task")] string Task,
        [property: JsonPropertyName("length")] int Length,
        [property: JsonPropertyName("seed")] int Seed,
        [property: JsonPropertyName("context")] int[] Context,
        [property: JsonPropertyName("question")] int[] Question,
        [property: JsonPropertyName("answer")] int[] Answer,
        [property: JsonPropertyName("graded_ids")] int[]? GradedIds,
        [property: JsonPropertyName("grades")] int[]? Grades);

    /// <summary>Writes gzip JSON lines atomically (temp file + rename).</summary>
    public void Save(string path)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + $".{Environment.ProcessId}.tmp";
        using (var fs = File.Create(tmp))
        using (var gz = new GZipStream(fs, CompressionLevel.SmallestSize))
        using (var w = new StreamWriter(gz))
            foreach (var e in Examples)
            {
                var qa = e.Questions[0];
                w.WriteLine(JsonSerializer.Serialize(new Line(e.Task, e.Length, e.Seed, e.Context, qa.Question, qa.Answer, qa.GradedIds, qa.Grades), Json));
            }
        File.Move(tmp, full, overwrite: true);
    }

    public static EvalSet Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"evaluation set '{path}' does not exist", path);
        var list = new List<TaskExample>();
        int length = -1, lineNo = 0;
        using var r = new StreamReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        try
        {
            while (r.ReadLine() is { } line)
            {
                lineNo++;
                var l = JsonSerializer.Deserialize<Line>(line, Json) ?? throw new InvalidDataException($"{path}: line {lineNo} is empty");
                if (length < 0) length = l.Length;
                else if (l.Length != length) throw new InvalidDataException($"{path}: line {lineNo} has length {l.Length}, the set's is {length}");
                list.Add(new TaskExample(l.Task, l.Length, l.Seed, l.Context, [new QuestionAnswer(l.Question, l.Answer, l.GradedIds, l.Grades)]));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
        {
            throw new InvalidDataException($"{path}: line {lineNo}: {e.Message}");
        }
        if (list.Count == 0) throw new InvalidDataException($"{path}: no examples");
        return new EvalSet(length, list);
    }
}
