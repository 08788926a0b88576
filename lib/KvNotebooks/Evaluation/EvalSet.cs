using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvNotebooks.Tasks;
using KvNotebooks.Training.Pretraining;
using KvNotebooks.Validation;

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

    /// <summary>
    /// Seed base of the held-out examples (<c>kvnb eval --held-out</c>, <c>kvnb sweep --held-out</c>): distinct from every
    /// base used in training or while designing the model and the workbook — training (run seed 1, hashed per step and
    /// batch index), the teacher-forced evaluations during training (raw seeds 1,000,000 + i) and <c>kvnb probe</c>
    /// (2,000,000 + i), the held-out checks of the training log (bases 3,000,000 and 5,000,000), the fixed sets
    /// (<see cref="DefaultSeed"/>) and the follow-up questions (<see cref="DefaultSeed"/> + 1). A test checks that none of
    /// its first seeds is one of those. Rows scored on it carry example_set "seed:91000000" and are kept apart from the
    /// fixed sets' rows.
    /// </summary>
    public const int HeldOutSeed = 91_000_000;

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

    /// <summary>The examples a row's <paramref name="exampleSet"/> names: the fixed set (<see cref="LoadOrCreate"/>) or,
    /// for "seed:N", <paramref name="perTask"/> examples per task generated from seed base N.</summary>
    public static EvalSet For(string exampleSet, string evalDir, IReadOnlyList<LongContextTask> tasks, int length, int perTask) =>
        exampleSet == EvalRow.FixedSet ? LoadOrCreate(evalDir, tasks, length, perTask)
        : exampleSet.StartsWith("seed:", StringComparison.Ordinal) && int.TryParse(exampleSet.AsSpan(5), out int seed) ? Create(tasks, length, perTask, seed)
        : throw new ArgumentException($"example set '{exampleSet}' is neither fixed nor seed:N");

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

    /// <summary>Longest line read (a 128K-token example is about 1 M characters) and most characters in a set,
    /// checked while decompressing, so a corrupt or hostile file cannot exhaust memory.</summary>
    public const int MaxLineChars = 16 << 20;
    public const long MaxTotalChars = 4L << 30;
    public const int MaxLength = 1 << 24;

    /// <summary>Reads a set written by <see cref="Save"/>. Every line is checked: known keys only, a known task, one
    /// length for the whole set, token ids inside the task vocabulary, and context + question + answer + &lt;eos&gt;
    /// = length (as generated). Errors are <see cref="InputException"/>s naming the line and key.</summary>
    public static EvalSet Load(string path)
    {
        InputFile.RequireFile(path, "evaluation set");
        var list = new List<TaskExample>();
        int length = -1;
        int vocab = Vocabulary.Default.Size;
        using var lines = new LineReader(new CheckedGzipStream(path), path, MaxLineChars, MaxTotalChars);
        while (lines.ReadLine() is { } line)
        {
            string at = $"line {lines.LineNumber}";
            using var doc = StrictJson.Parse(line, path, field: at);
            var o = new JsonField(doc.RootElement, path, at);
            if (o.Kind != JsonValueKind.Object) throw o.Error($"must be a JSON object{o.Got()}");
            o.OnlyKeys("task", "length", "seed", "context", "question", "answer", "graded_ids", "grades");
            string task = o["task"].String();
            if (!TaskSuite.All.Any(t => t.Name == task)) throw o["task"].Error($"unknown task '{StrictJson.Printable(task)}'");
            int l = o["length"].Int(1, MaxLength);
            if (length < 0) length = l;
            else if (l != length) throw o["length"].Error($"{l}, the set's is {length} (the first line's)");
            int seed = o["seed"].Int();
            int[] Ids(JsonField f, int min) => f.Items(maxLength: length, minLength: min).Select(x => x.Int(0, vocab - 1)).ToArray();
            int[]? OptionalIds(JsonField f) => f.IsMissing ? null : Ids(f, 0);
            var context = Ids(o["context"], 0);
            var question = Ids(o["question"], 1);
            var answer = Ids(o["answer"], 1);
            var graded = OptionalIds(o["graded_ids"]);
            int[]? grades = o["grades"].IsMissing ? null : o["grades"].Items(maxLength: length).Select(x => x.Int(0, 1 << 20)).ToArray();
            if ((graded is null) != (grades is null) || (graded is not null && graded.Length != grades!.Length))
                throw o["grades"].Error("graded_ids and grades must both be given, with one grade per id, or both be null");
            long total = (long)context.Length + question.Length + answer.Length + 1;
            if (total != length)
                throw o.Error($"context + question + answer + <eos> = {total} tokens, but the length is {length}");
            list.Add(new TaskExample(task, l, seed, context, [new QuestionAnswer(question, answer, graded, grades)]));
        }
        if (list.Count == 0) throw new InputException(path, "", "no examples");
        return new EvalSet(length, list);
    }
}
