using KvNotebooks.Footprint;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Inference;

public class SessionTests
{
    /// <summary>Runs a session and returns every query row's logits (prompt rows, then one row per
    /// generated token except the last, whose logits are never needed) and the full token sequence.</summary>
    private static (float[][] logits, int[] sequence, Session session) RunAll(LlamaModel model, IEvictionMethod method, int[] prompt, Chunking chunk, int gen)
    {
        int V = model.Config.VocabSize;
        var session = new Session(model, method, chunk, pageSize: 4);
        var all = new float[prompt.Length * V];
        session.Prefill(prompt, all);
        var rows = Enumerable.Range(0, prompt.Length).Select(i => all.AsSpan(i * V, V).ToArray()).ToList();
        var seq = prompt.ToList();
        for (int t = 0; t < gen; t++)
        {
            int token = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(session.LastLogits);
            seq.Add(token);
            session.Decode(token, needLogits: t + 1 < gen);
            if (t + 1 < gen) rows.Add(session.LastLogits.ToArray());
        }
        return (rows.ToArray(), seq.ToArray(), session);
    }

    private static void AssertClose(double[][] expected, float[][] actual, double tol = 2e-4)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.SelectMany(r => r).Max(Math.Abs);
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < expected[t].Length; v++)
                Assert.True(Math.Abs(expected[t][v] - actual[t][v]) <= tol * scale,
                    $"row {t}, logit {v}: expected {expected[t][v]:G6}, got {actual[t][v]:G6} (scale {scale:G3})");
    }

    [Theory]
    [InlineData(false, false, false, 2)]
    [InlineData(true, true, false, 2)]   // Qwen2-style bias, tied embeddings
    [InlineData(false, false, true, 1)]  // llama3 rope scaling, MQA
    [InlineData(false, true, false, 4)]  // no GQA sharing
    public void FullAttentionMatchesReference(bool bias, bool tied, bool llama3, int kvHeads)
    {
        var w = TinyModels.Weights(TinyModels.Config(bias, tied, llama3, kvHeads), seed: 1);
        var model = new LlamaModel(w);
        var prompt = TinyModels.Tokens(23, w.Config.VocabSize, seed: 2);
        var (logits, seq, _) = RunAll(model, new FullAttention(), prompt, chunk: 7, gen: 5);
        var reference = ReferenceLlama.Logits(w, seq[..^1], (_, _, q, k) => k <= q);
        AssertClose(reference, logits);
    }

    [Fact]
    public void ChunkedPrefillEqualsSinglePrefill()
    {
        var w = TinyModels.Weights(TinyModels.Config(), seed: 3);
        var model = new LlamaModel(w);
        var prompt = TinyModels.Tokens(37, w.Config.VocabSize, seed: 4);
        var (single, seqSingle, _) = RunAll(model, new FullAttention(), prompt, chunk: 1000, gen: 6);
        foreach (int chunk in new[] { 1, 5, 16, 36, 37 })
        {
            var (chunked, seq, _) = RunAll(model, new FullAttention(), prompt, chunk, gen: 6);
            Assert.Equal(seqSingle, seq);
            AssertClose(single.Select(r => r.Select(v => (double)v).ToArray()).ToArray(), chunked, 1e-5);
        }
    }

    /// <summary>The streaming visibility rule of docs/footprint.md, written directly: a pre-fill row sees its
    /// chunk causally plus the first S and last W tokens before the chunk; a decode row at position a
    /// sees itself plus the first S and last W tokens before a.</summary>
    private static bool StreamingVisible(int query, int key, int n, int chunk, int sink, int window)
    {
        if (key > query) return false;
        int start = query < n ? query / chunk * chunk : query;
        return key >= start || key < sink || key >= start - window;
    }

    [Theory]
    [InlineData(30, 8, 6, 2, 3)]
    [InlineData(30, 30, 6, 1, 4)]
    [InlineData(29, 4, 5, 0, 5)]
    [InlineData(25, 10, 4, 3, 0)]
    [InlineData(20, 3, 8, 40, 40)] // sink + window larger than the sequence: same as full
    public void StreamingMatchesMaskedReference(int n, int chunk, int gen, int sink, int window)
    {
        var w = TinyModels.Weights(TinyModels.Config(), seed: 5);
        var prompt = TinyModels.Tokens(n, w.Config.VocabSize, seed: 6);
        var (logits, seq, _) = RunAll(new LlamaModel(w), new Streaming(sink, window), prompt, chunk, gen);
        var reference = ReferenceLlama.Logits(w, seq[..^1], (_, _, q, k) => StreamingVisible(q, k, n, chunk, sink, window));
        AssertClose(reference, logits);
    }

    [Fact]
    public void LongChunksMatchMaskedReference()
    {
        // Chunks of ≥ 128 rows take the pre-fill attention path (64-row blocks through the GEMM kernel).
        var w = TinyModels.Weights(TinyModels.Config() with { HeadDim = 16, NumHeads = 2, NumKvHeads = 1 }, seed: 12);
        int n = 300, chunk = 140, gen = 3, sink = 3, window = 40;
        var prompt = TinyModels.Tokens(n, w.Config.VocabSize, seed: 13);
        var (logits, seq, _) = RunAll(new LlamaModel(w), new Streaming(sink, window), prompt, chunk, gen);
        var reference = ReferenceLlama.Logits(w, seq[..^1], (_, _, q, k) => StreamingVisible(q, k, n, chunk, sink, window));
        AssertClose(reference, logits);
    }

    [Fact]
    public void HeadMaskMatchesMaskedReference()
    {
        var c = TinyModels.Config() with { NumLayers = 3 };
        var w = TinyModels.Weights(c, seed: 7);
        var full = new bool[3, 2] { { true, false }, { false, false }, { false, true } };
        int n = 27, chunk = 6, gen = 5, sink = 2, window = 4;
        var prompt = TinyModels.Tokens(n, c.VocabSize, seed: 8);
        var (logits, seq, _) = RunAll(new LlamaModel(w), new HeadMask(full, sink, window), prompt, chunk, gen);
        var reference = ReferenceLlama.Logits(w, seq[..^1],
            (l, g, q, k) => full[l, g] ? k <= q : StreamingVisible(q, k, n, chunk, sink, window));
        AssertClose(reference, logits);
    }

    [Fact]
    public void EvictionReallyFreesCacheEntries()
    {
        var w = TinyModels.Weights(TinyModels.Config(), seed: 9);
        var model = new LlamaModel(w);
        var prompt = TinyModels.Tokens(40, w.Config.VocabSize, seed: 10);
        var full = new Session(model, new FullAttention(), 8, pageSize: 4);
        full.Run(prompt, 4);
        var streaming = new Session(model, new Streaming(2, 6), 8, pageSize: 4);
        streaming.Run(prompt, 4);
        int heads = w.Config.NumLayers * w.Config.NumKvHeads;
        Assert.Equal(heads * 44L, full.Cache.LiveEntries);
        Assert.Equal(heads * 8L, streaming.Cache.LiveEntries);
        // Eviction runs per layer right after its attention, so layers never peak together: while one
        // layer attends a chunk its heads hold 2 + 6 + 8 entries (4 pages of 4), the other layer's 2 + 6 (2 pages).
        Assert.Equal(w.Config.NumKvHeads * (4 + 2), streaming.Cache.Pool.PeakPagesInUse);
        Assert.Equal(heads * 11, full.Cache.Pool.PeakPagesInUse);
        for (int l = 0; l < w.Config.NumLayers; l++)
            Assert.Equal([0, 1, 38, 39, 40, 41, 42, 43], Enumerable.Range(0, 8).Select(streaming.Cache[l, 1].Position));
    }

    [Fact]
    public void BadTokensAndSizesGiveClearErrors()
    {
        var model = new LlamaModel(TinyModels.Weights(TinyModels.Config(), seed: 11));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Session(model, new FullAttention()).Prefill([1, 2, 99]));
        Assert.Contains("outside the vocabulary", e.Message);
        Assert.Throws<ArgumentException>(() => new Session(model, new FullAttention()).Prefill([]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Session(model, new FullAttention(), chunking: Chunking.Of(0)));
        Assert.Throws<InvalidOperationException>(() => new Session(model, new FullAttention()).Generate(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Streaming(-1, 4));
    }

    [Fact]
    public void MaskTsvRoundTripsAndRejectsBadFiles()
    {
        var dir = Directory.CreateTempSubdirectory("kvnb-mask");
        var path = Path.Combine(dir.FullName, "masks.tsv");
        var mask = new bool[2, 3] { { true, false, true }, { false, false, true } };
        HeadMask.SaveTsv(path, mask);
        Assert.Equal(mask, HeadMask.LoadTsv(path));
        File.WriteAllText(path, "1\t0\n1\n");
        Assert.Contains("line 2: 1 columns, line 1 has 2", Assert.Throws<KvNotebooks.Validation.InputException>(() => HeadMask.LoadTsv(path)).Message);
        File.WriteAllText(path, "1\t0.5\n");
        var half = Assert.Throws<KvNotebooks.Validation.InputException>(() => HeadMask.LoadTsv(path));
        Assert.Contains("only 0 (streaming) or 1 (full)", half.Message);
        Assert.Equal("line 1.column 2", half.Field);
        File.WriteAllText(path, "1\t0\n0\t1\n");
        var e = Assert.Throws<KvNotebooks.Validation.InputException>(() => HeadMask.LoadTsv(path, TinyModels.Config() with { NumLayers = 3 }));
        Assert.Contains("the model has 3 layers × 2 KV heads", e.Message);
        dir.Delete(true);
    }
}
