namespace KvNotebooks.Tasks;

/// <summary>
/// The task suite: one synthetic task per HELMET dataset family, grouped in HELMET's categories
/// (docs/statistics.md, "What is scored"). A category's score is the mean of its tasks' scores, as in the paper.
/// </summary>
public static class TaskSuite
{
    /// <summary>The scored categories in the paper's table order (LongGen stands for HTML→TSV).</summary>
    public static readonly string[] Categories = ["Recall", "RAG", "Re-rank", "ICL", "LongQA", "Summ", "LongGen"];

    /// <summary>Every task: scored ones first, then the pass-key task (DuoAttention's training data), the
    /// copy task (pre-training text with repeats), three training-only variants that teach json_kv's keys
    /// (hard json_kv, hex-keyed needles, json_kv where the hex piece decides), two whose answers come in
    /// any order the score accepts (niah_mv's values, rerank's ties), niah_uuid with uuids that share
    /// their pieces, and rerank asked for the passages that hold one word (in its passages, and in
    /// passages of about 4 and 10 words). New tasks go last: a task's index seeds its fixed evaluation
    /// examples.</summary>
    public static IReadOnlyList<LongContextTask> All { get; } =
    [
        new JsonKv(), new NeedleMultiKey(), new NeedleMultiValue(), new NeedleUuid(),
        new Rag(), new Rerank(), Icl.Few, Icl.Many, new VariableTracking(), new Frequency(), new TableGen(),
        new Passkey(), new CopyTask(), JsonKv.Hard, NeedleMultiKey.HexKeys, JsonKv.HexDecides,
        NeedleMultiValue.AnyOrder, Rerank.AnyOrder, NeedleUuid.SharedPieces, Rerank.OneWord,
        Rerank.OneWordShort, Rerank.OneWordMedium,
    ];

    /// <summary>The tasks that count in the category scores.</summary>
    public static IEnumerable<LongContextTask> Scored => All.Where(t => Categories.Contains(t.Category));

    public static LongContextTask Get(string name) =>
        All.FirstOrDefault(t => t.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown task '{name}'; tasks: {string.Join(", ", All.Select(t => t.Name))}; categories: {string.Join(", ", Categories)}");

    /// <summary>"all", or a comma-separated list of task and category names (case-insensitive).</summary>
    public static IReadOnlyList<LongContextTask> Parse(string spec)
    {
        var result = new List<LongContextTask>();
        foreach (var part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            IEnumerable<LongContextTask> add =
                part.Equals("all", StringComparison.OrdinalIgnoreCase) ? Scored
                : Categories.FirstOrDefault(c => c.Equals(part, StringComparison.OrdinalIgnoreCase)) is { } cat ? Scored.Where(t => t.Category == cat)
                : [Get(part)];
            foreach (var t in add) if (!result.Contains(t)) result.Add(t);
        }
        if (result.Count == 0) throw new ArgumentException($"no tasks in '{spec}'");
        return result;
    }
}
