using KvNotebooks.HeadMasks;
using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.HeadMasks;

public class MaskConfigTests
{
    private static string ConfigDir => Path.Combine(TestPaths.RepoRoot, "data", "configs", "masks");

    /// <summary>The shipped streaming head keeps the paper's ratios to the prompt (sink 128, window 1024, blocks of 128 at
    /// 128K) within a factor 2 at both evaluation settings (2K and 4K), and its block counts.</summary>
    [Fact]
    public void TheStreamingConfigIsThePapersScaledToOurContexts()
    {
        var s = StreamingConfig.Load(Path.Combine(ConfigDir, "streaming.json"));
        foreach (int n in new[] { 2048, 4096 })
        {
            foreach (var (ours, paper) in new[] { (s.Sink, 128.0), (s.Window, 1024.0), (s.Block, 128.0) })
            {
                double ratio = ours / (double)n / (paper / 131072);
                Assert.InRange(ratio, 0.5, 2.0);
            }
            Assert.Equal(n / 4, s.ChunkFor(n));
        }
        Assert.Equal((1, 8), (s.Training.SinkBlocks, s.Training.LocalBlocks));   // as the paper's 128/1024 in blocks of 128
    }

    [Fact]
    public void EveryShippedMaskConfigLoadsAndReadsTheSharedStreamingHead()
    {
        var shared = StreamingConfig.Load(Path.Combine(ConfigDir, "streaming.json"));
        var files = Directory.GetFiles(ConfigDir, "*.json").Where(f => Path.GetFileName(f) != "streaming.json").ToArray();
        Assert.NotEmpty(files);
        string cwd = Environment.CurrentDirectory;
        try
        {
            Environment.CurrentDirectory = TestPaths.RepoRoot;   // the configs' paths are relative to the repository root
            foreach (var f in files)
            {
                var cfg = MaskTrainConfig.Load(f);
                Assert.Equal(shared, cfg.Streaming);
                Assert.True(Directory.Exists(cfg.Model), $"{f}: model {cfg.Model} missing");
                Assert.True(cfg.Length >= 1024 && cfg.Length <= 4096, $"{f}: length {cfg.Length}");
            }
        }
        finally { Environment.CurrentDirectory = cwd; }
    }

    [Theory]
    [InlineData("""{"method": "magic", "steps": 3, "data": {"natural_text": 1}, "streaming": {"sink": 2, "window": 16, "block": 2, "chunk_fraction": 0.25}}""", "\"method\" must be duo, prulong or locret")]
    [InlineData("""{"method": "duo", "steps": 0, "data": {"natural_text": 1}, "streaming": {"sink": 2, "window": 16, "block": 2, "chunk_fraction": 0.25}}""", "steps must be ≥ 1")]
    [InlineData("""{"method": "duo", "steps": 3, "data": {"novels": 1}, "streaming": {"sink": 2, "window": 16, "block": 2, "chunk_fraction": 0.25}}""", "unknown source 'novels'")]
    [InlineData("""{"method": "prulong", "steps": 3, "data": {"natural_text": 1}, "target_sparsity": 1.5, "streaming": {"sink": 2, "window": 16, "block": 2, "chunk_fraction": 0.25}}""", "target_sparsity")]
    [InlineData("""{"method": "duo", "steps": 3, "data": {"natural_text": 1}, "streaming": {"sink": 2, "window": 0, "block": 2, "chunk_fraction": 0.25}}""", "window ≥ 1")]
    [InlineData("""{"method": "duo", "steps": 3, "data": {"natural_text": 1}, "streaming": {"sink": 2, "window": 16, "blocks": 2, "chunk_fraction": 0.25}}""", "unknown field \"blocks\"")]
    [InlineData("""{"method": "duo", "steps": 3, "data": {"natural_text": 1}, "lr_typo": 1, "streaming": {"sink": 2, "window": 16, "block": 2, "chunk_fraction": 0.25}}""", "lr_typo")]
    public void BadConfigsNameTheProblem(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => MaskTrainConfig.Parse(json, "cfg.json"));
        Assert.StartsWith("cfg.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void MethodDefaultsAreTheOfficialOnesAndTheSavedConfigRoundTrips()
    {
        const string s = "\"streaming\": {\"sink\": 2, \"window\": 16, \"block\": 2, \"chunk_fraction\": 0.25}";
        var duo = MaskTrainConfig.Parse($$"""{"method": "duo", "steps": 100, "data": {"passkeys": 1}, {{s}}}""", "d");
        Assert.Equal((0.02, 0.05, 0.0, 0.999, 0.0), (duo.Lr, duo.RegWeight, duo.WeightDecay, duo.Beta2, duo.ClipNorm));
        var pl = MaskTrainConfig.Parse($$"""{"method": "prulong", "steps": 100, "data": {"natural_text": 1}, {{s}}}""", "p");
        Assert.Equal((1.0, 1.0, 0.0, 0.1, 0.95, 1.0, 0.7, 4.0, 0.01), (pl.Lr, pl.LambdaLr, pl.WeightsLr, pl.WeightDecay, pl.Beta2, pl.ClipNorm, pl.TargetSparsity, pl.InitLogAlpha, pl.InitLogAlphaStd));
        Assert.Equal(MaskTrainConfig.Parse(pl.ToJson(), "again").ToJson(), pl.ToJson());
        // PruLong: cosine with 10 % warmup and a 1 % floor; the target rises over 80 % of the steps
        Assert.Equal(0.1, pl.LrFactor(1), 12);
        Assert.Equal(1.0, pl.LrFactor(10), 12);
        Assert.Equal(0.01, pl.LrFactor(100), 12);
        Assert.Equal(0.0, pl.TargetAt(0));
        Assert.Equal(0.35, pl.TargetAt(40), 12);
        Assert.Equal(0.7, pl.TargetAt(80), 12);
        Assert.Equal(0.7, pl.TargetAt(99), 12);
        // Duo: up from 0.1 over the first fifth, flat, down to 0.1 over the last fifth
        Assert.Equal(0.1, duo.LrFactor(1), 12);
        Assert.Equal(0.5, duo.LrFactor(10), 12);
        Assert.Equal(1.0, duo.LrFactor(50), 12);
        Assert.Equal(0.1, duo.LrFactor(100), 12);
    }

    [Fact]
    public void MultiPasskeyHaystacksHoldTenKeysInOrderAndAskThemAll()
    {
        var task = new MultiPasskey();
        var v = Vocabulary.Default;
        foreach (int seed in new[] { 1, 2, 3 })
        {
            var ex = task.Generate(seed, 2048, 10);
            Assert.Equal(2048, ex.TrainingLength);
            Assert.Equal(10, ex.Questions.Length);
            int last = -1;
            for (int i = 0; i < 10; i++)
            {
                int[] needle = [.. v.Ids("the pass key"), v.Numbers[i + 1], v["is"], .. ex.Questions[i].Answer];
                int at = IndexOf(ex.Context, needle);
                Assert.True(at > last, $"seed {seed}: key {i + 1} not found after key {i}");
                Assert.InRange(at / 2048.0, 0.05, 0.95);
                last = at;
                Assert.Equal([v["question"], .. v.Ids("the pass key"), v.Numbers[i + 1], v["is"]], ex.Questions[i].Question);
            }
        }
        // the data source supervises the question-and-answer block only
        var data = new MaskData(new Dictionary<string, double> { ["passkeys"] = 1 }, seed: 1, length: 2048);
        var seq = data.Get(0, 0);
        Assert.Equal(Enumerable.Range(seq.QaStart, 2048 - seq.QaStart), seq.Rows);
        Assert.Equal(Enumerable.Range(seq.QaStart - 1, 2048 - seq.QaStart), seq.LossPositions);
        Assert.Equal(seq.LossPositions.Select(p => seq.Tokens[p + 1]), seq.Targets);
        Assert.Equal(10 * 11, 2048 - seq.QaStart);
    }

    [Fact]
    public void DataIsAFunctionOfSeedStepAndIndexAndEachSourceSupervisesWhatItSays()
    {
        var mix = new Dictionary<string, double> { ["natural_text"] = 1, ["task_documents"] = 1, ["context_synthesis"] = 1 };
        var a = new MaskData(mix, seed: 3, length: 1024);
        var b = new MaskData(mix, seed: 3, length: 1024);
        var sources = new HashSet<string>();
        for (int step = 0; step < 30; step++)
        {
            var (x, y) = (a.Get(step, 0), b.Get(step, 0));
            Assert.Equal(x.Tokens, y.Tokens);
            Assert.Equal(1024, x.Tokens.Length);
            sources.Add(x.Source);
            if (x.Source == "context_synthesis")
            {
                Assert.All(x.LossPositions, p => Assert.True(p >= x.QaStart - 1));
                Assert.True(x.LossPositions.Length < 100);
            }
            else Assert.Equal(Enumerable.Range(0, 1023), x.LossPositions);
        }
        Assert.Equal(3, sources.Count);
        Assert.NotEqual(a.Get(0, 0).Tokens, new MaskData(mix, seed: 4, length: 1024).Get(0, 0).Tokens);
        var (tokens, rows, pos, tgt, seqs) = a.Batch(5, 2);
        Assert.Equal(2048, tokens.Length);
        Assert.Equal(seqs[1].Rows.Select(r => r + 1024), rows.Skip(seqs[0].Rows.Length));
        Assert.All(pos.Zip(tgt), pt => Assert.Equal(tokens[pt.First + 1], pt.Second));
    }

    private static int IndexOf(int[] hay, int[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
            if (hay.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
