using KvNotebooks.Eviction;
using KvNotebooks.Evaluation;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.Evaluation;

/// <summary>The model shipped in data/models/kvnb-small: it loads, its tokenizer is the task suite's, it
/// has the shape the workbook's head-sparsity sweeps need, and it still retrieves (a floor, on a few
/// fixed examples, fast enough for CI).</summary>
public class ShippedModelTests
{
    private static string Repo() => TestPaths.RepoRoot;

    private static string ModelDir => Path.Combine(Repo(), "data", "models", "kvnb-small");

    [Fact]
    public void It_loads_with_the_task_tokenizer_and_enough_kv_heads()
    {
        var w = LlamaWeights.Load(ModelDir);
        var c = w.Config;
        Assert.True(c.NumLayers * c.NumKvHeads >= 24, "head-sparsity sweeps need ≥ 24 KV heads");
        Assert.True(c.GroupSize > 1, "the model uses grouped-query attention");
        var tok = WordTokenizer.Load(Path.Combine(ModelDir, "tokenizer.json"));
        Assert.Equal(Vocabulary.Default.Size, tok.VocabSize);
        for (int i = 0; i < tok.VocabSize; i++) Assert.Equal(Vocabulary.Default.Word(i), tok.Word(i));
        Assert.Equal(Vocabulary.Default.Size, c.VocabSize);
        foreach (var f in new[] { "train_config.json", "loss.csv", "eval.csv" }) Assert.True(File.Exists(Path.Combine(ModelDir, f)), f);
    }

    [Theory]
    [InlineData("niah_mk", 0.8)]
    [InlineData("rag", 0.6)]
    [InlineData("json_kv", 0.8)] // the pair (name, hex piece): matching the name alone scores ~60 % at 1K
    [InlineData("niah_mv", 0.8)] // all three values: a model that finds one and guesses scores ~40–55 %
    [InlineData("rerank", 0.4)] // NDCG@10: ten distinct ids drawn at random score ~26 % at 1K
    public void It_answers_from_far_back_in_a_1k_context(string taskName, double floor)
    {
        var model = new LlamaModel(LlamaWeights.Load(ModelDir));
        var task = TaskSuite.Get(taskName);
        var examples = EvalSet.Load(Path.Combine(Repo(), "data", "eval", EvalSet.FileName(1024))).For(taskName).Take(5).ToList();
        var full = new EvalMethod("full", "full", m => new Session(m, new FullAttention()));
        double score = examples.Average(ex => Evaluator.RunExample(model, full, task, ex).Score);
        Assert.True(score >= floor, $"{taskName}: {score:P0} at full attention, below the floor {floor:P0}");
        // Streaming heads with 64-token chunks see only 4 sinks and the newest 64 tokens when the question
        // is read: the needles are gone, so the score must have come from far back.
        var local = new EvalMethod("streaming", "s=4,w=64,chunk=64", m => new Session(m, new Streaming(4, 64), chunking: 64));
        double localScore = examples.Average(ex => Evaluator.RunExample(model, local, task, ex).Score);
        Assert.True(localScore < score, $"{taskName}: a 64-token window scores {localScore:P0}, full attention {score:P0}");
    }
}
