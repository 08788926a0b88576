using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.HeadMasks;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tests.Inference;

namespace KvNotebooks.Tests.Eviction;

/// <summary>The engine side of the learned methods: DuoAttention and PruLong binarize continuous scores at any head
/// sparsity and run as head masks; Locret scores KVs with retaining heads on its own chunked schedule. Each is measured
/// against the accountant.</summary>
public sealed class LearnedMethodsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-learned").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static LlamaModel Model(out LlamaConfig c, int seed = 3)
    {
        c = TinyModels.Config() with { NumLayers = 3 };
        return new LlamaModel(TinyModels.Weights(c, seed));
    }

    [Theory]
    [InlineData("duo", 0.5)]
    [InlineData("prulong", 0.7)]
    [InlineData("prulong", 0.0)]
    public void Continuous_masks_run_as_their_binarization_and_count_whole_heads(string method, double s)
    {
        var model = Model(out var c);
        // Scores with ties (PruLong's deterministic masks put the expected zeros at exactly 0).
        var values = new double[c.NumLayers, c.NumKvHeads];
        var rng = new Random(7);
        for (int l = 0; l < c.NumLayers; l++) for (int h = 0; h < c.NumKvHeads; h++) values[l, h] = h == 0 ? 0 : Math.Round(rng.NextDouble(), 1);
        string scores = Path.Combine(_dir, "scores.tsv");
        new HeadScores(values).Save(scores);
        var spec = MethodSpec.Of(method).With(HeadMask.MasksKnob, scores).With(LearnedHeadMasks.SparsityKnob, s)
            .With(Streaming.SinkKnob, 2).With(Streaming.WindowKnob, 5);
        var prompt = TinyModels.Tokens(60, c.VocabSize, seed: 8);
        var run = new Session(model, spec, Chunking.Of(16)).Run(prompt, 4);

        // The same mask written as 0/1 and run as a plain head mask gives the same run, bit for bit.
        var full = LearnedHeadMasks.Binarized(spec, method == "duo" ? TieBreak.Duo : TieBreak.PruLong);
        string binary = Path.Combine(_dir, "binary.tsv");
        HeadMask.SaveTsv(binary, full);
        var plain = new Session(model, new HeadMask(HeadMask.LoadTsv(binary, c), 2, 5), Chunking.Of(16)).Run(prompt, 4);
        Assert.Equal(plain.Generated, run.Generated);
        Assert.Equal(plain.Entries, run.Entries);
        Assert.Equal(plain.PeakKvBytes, run.PeakKvBytes);

        int heads = c.NumLayers * c.NumKvHeads, streaming = HeadScores.StreamingCount(s, heads);
        Assert.Equal(heads - streaming, full.Cast<bool>().Count(f => f));
        var expected = spec.Footprint(new FootprintShape(60, 4, Chunking.Of(16)));
        Assert.Equal(expected.Footprint, run.Footprint, 12);
        Assert.Equal(expected.PeakKv, run.PeakKv, 12);
        Assert.Equal(KvFootprint.HeadMix(new ChunkPlan(60, 16), 4, streaming, heads, 2, 5).Footprint, run.Footprint, 12);
    }

    [Fact]
    public void The_tie_seed_is_part_of_the_configuration_and_changes_only_tied_choices()
    {
        var values = new double[2, 4];   // all tied
        string scores = Path.Combine(_dir, "tied.tsv");
        new HeadScores(values).Save(scores);
        var a = MethodSpec.Of("duo").With(HeadMask.MasksKnob, scores).With(LearnedHeadMasks.SparsityKnob, 0.5);
        var b = a.With(LearnedHeadMasks.TieSeedKnob, 7);
        Assert.Equal(LearnedHeadMasks.Binarized(a, TieBreak.Duo), LearnedHeadMasks.Binarized(a, TieBreak.Duo));
        Assert.NotEqual(a.Describe(Chunking.None), b.Describe(Chunking.None));
        Assert.Contains("tie-seed=7", b.Describe(Chunking.None));
        Assert.Equal(4, LearnedHeadMasks.Binarized(b, TieBreak.Duo).Cast<bool>().Count(f => !f));
    }

    [Theory]
    [InlineData(0.5, 12, 6, 2, 0)]
    [InlineData(0.8, 16, 4, 3, 0)]
    [InlineData(0.6, 10, 5, 0, 4)]
    public void Locret_keeps_its_predicted_best_plus_stabilizers_as_the_accountant_counts(double p, int chunk, int stabilizers, int localLen, int kvBits)
    {
        var model = Model(out var c);
        string heads = Path.Combine(_dir, "heads.safetensors");
        var retaining = RetainingHeads.Random(c, hiddenSize: 16, seed: 5, std: 0.5f);
        retaining.Save(heads);
        var spec = MethodSpec.Of("locret").With(Locret.HeadsKnob, heads).With(Locret.StabilizersKnob, stabilizers).With(Locret.LocalLenKnob, localLen)
            with { Schedule = EvictionSchedule.Naive(EvictionBudget.Fraction(p)), Storage = kvBits > 0 ? new KvStorage(Quantization: new KvQuantization(kvBits, 4, 2)) : KvStorage.Default };
        int n = 57, m = 3;
        var prompt = TinyModels.Tokens(n, c.VocabSize, seed: 9);
        var session = new Session(model, spec, Chunking.Of(chunk));
        var run = session.Run(prompt, m);
        var expected = spec.Footprint(new FootprintShape(n, m, Chunking.Of(chunk)));
        Assert.Equal(expected.Footprint, run.Footprint, 12);
        Assert.Equal(expected.PeakKv, run.PeakKv, 12);
        if (kvBits == 0)
            Assert.Equal(KvFootprint.Locret(n, m, chunk, p, stabilizers, localLen).Footprint, run.Footprint, 12);   // the paper's formula
        // The prompt's last tokens were their own chunk.
        Assert.Equal(ChunkPlan.Locret(n, chunk, localLen).Count, session.Meter.Steps.Count(s => s.Prefill));

        // What every head kept of the first chunk: round((1 − p)·c) + stabilizers of it, the stabilizers among them.
        int c0 = ChunkPlan.Locret(n, chunk, localLen).Sizes[0];
        int keep0 = Math.Min((int)Math.Round((1 - p) * c0, MidpointRounding.ToEven) + stabilizers, c0);
        for (int l = 0; l < c.NumLayers; l++)
            for (int h = 0; h < c.NumKvHeads; h++)
            {
                var view = session.Cache.View(l, h, 0, out _);
                var positions = Enumerable.Range(0, view.Count).Select(view.Position).Where(x => x < c0).ToArray();
                Assert.Equal(keep0, positions.Length);
                Assert.Equal(Enumerable.Range(c0 - stabilizers, stabilizers), positions[^stabilizers..]);
            }
    }

    [Fact]
    public void Locret_refuses_heads_of_another_shape_and_asks_for_its_heads()
    {
        var model = Model(out var c);
        Assert.Contains("--heads is needed", Assert.Throws<ArgumentException>(() => MethodSpec.Of("locret").Create(c)).Message);
        string other = Path.Combine(_dir, "other.safetensors");
        RetainingHeads.Random(c with { NumLayers = 2 }, 8, 1).Save(other);
        Assert.ThrowsAny<Exception>(() => new Session(model, MethodSpec.Of("locret").With(Locret.HeadsKnob, other), Chunking.Of(8)).Run(TinyModels.Tokens(20, c.VocabSize, 1), 1));
    }
}
