using KvNotebooks.Footprint;
using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Kernels;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Inference;

/// <summary>
/// The forward pass on its fast paths: head size 32 (fused AVX-512 attention over 64-entry pages), GQA, biases,
/// several row tiles (prompts longer than <see cref="LlamaModel.RowTile"/>), against the double-precision
/// reference; chunked pre-fill equal to a single one; the same bits on 1 and 2 threads; and the portable build.
/// </summary>
public class FastForwardTests
{
    private static LlamaWeights Weights(int seed) => TinyModels.Weights(new LlamaConfig
    {
        VocabSize = 61, HiddenSize = 64, IntermediateSize = 100, NumLayers = 2, NumHeads = 4, NumKvHeads = 2,
        HeadDim = 32, RopeTheta = 10000, AttentionBias = true,
    }, seed);

    private static float[] Prefill(LlamaWeights w, int[] prompt, Chunking chunk, int threads, int pageSize = 64, bool portable = false)
    {
        var model = new LlamaModel(w, new ComputeContext(threads, portable));
        var session = new Session(model, new FullAttention(), chunk, pageSize: pageSize);
        var all = new float[prompt.Length * model.Config.VocabSize];
        session.Prefill(prompt, all);
        return all;
    }

    private static void Close(double[][] expected, float[] actual, int V, double tol, string what)
    {
        double scale = expected.SelectMany(r => r).Max(Math.Abs);
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < V; v++)
                Assert.True(Math.Abs(expected[t][v] - actual[t * V + v]) <= tol * scale,
                    $"{what}: row {t}, logit {v}: expected {expected[t][v]:G6}, got {actual[t * V + v]:G6}");
    }

    [Fact]
    public void LongPromptMatchesReferenceAndChunkingAndThreads()
    {
        var w = Weights(5);
        int V = w.Config.VocabSize;
        var prompt = TinyModels.Tokens(300, V, seed: 6);
        var single = Prefill(w, prompt, Chunking.None, threads: 2);
        var reference = ReferenceLlama.Logits(w, prompt, (_, _, q, k) => k <= q);
        Close(reference, single, V, 2e-4, "single pre-fill vs reference");

        Assert.Equal(single, Prefill(w, prompt, Chunking.None, threads: 1));     // tiles and attention items are row-local
        Assert.Equal(single, Prefill(w, prompt, Chunking.None, threads: 3));
        var asDouble = Enumerable.Range(0, prompt.Length).Select(t => single.AsSpan(t * V, V).ToArray().Select(x => (double)x).ToArray()).ToArray();
        foreach (int chunk in new[] { 100, 37, 5 })
            Close(asDouble, Prefill(w, prompt, chunk, threads: 2), V, 1e-5, $"chunk {chunk}");
        Close(asDouble, Prefill(w, prompt, 120, threads: 2, pageSize: 4), V, 1e-5, "pages of 4 (portable attention)");
    }

    [Fact]
    public void DecodeStepsMatchReference()
    {
        var w = Weights(9);
        int V = w.Config.VocabSize;
        var model = new LlamaModel(w);
        var prompt = TinyModels.Tokens(600, V, seed: 10);   // > 512 entries: the decode kernel splits each head
        var session = new Session(model, new FullAttention());
        session.Prefill(prompt);
        var seq = prompt.ToList();
        var logits = new List<float[]>();
        for (int t = 0; t < 3; t++)
        {
            int token = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(session.LastLogits);
            seq.Add(token);
            session.Decode(token);
            logits.Add(session.LastLogits.ToArray());
        }
        var reference = ReferenceLlama.Logits(w, seq.ToArray(), (_, _, q, k) => k <= q);
        for (int t = 0; t < 3; t++)
            Close([reference[prompt.Length + t]], logits[t], V, 2e-4, $"decode step {t}");
    }

    [Fact]
    public void PortableBuildMatchesTheFastOne()
    {
        var w = Weights(7);
        int V = w.Config.VocabSize;
        var prompt = TinyModels.Tokens(130, V, seed: 8);
        var fast = Prefill(w, prompt, Chunking.None, threads: 2);
        var portable = Prefill(w, prompt, Chunking.None, threads: 2, portable: true);
        var asDouble = Enumerable.Range(0, prompt.Length).Select(t => fast.AsSpan(t * V, V).ToArray().Select(x => (double)x).ToArray()).ToArray();
        Close(asDouble, portable, V, 1e-5, "portable vs AVX-512");
        // the kernels of a portable model's pass really see the switch (on every worker thread too)
        var spy = new ContextSpy();
        var model = new LlamaModel(w, new ComputeContext(2, portable: true));
        using var cache = model.NewCache();
        model.Forward(prompt, Enumerable.Range(0, prompt.Length).ToArray(), cache, LogitRows.None, default, spy);
        Assert.All(spy.Seen, c => Assert.True(c.Portable));
        bool onWorkers = false;
        model.Compute.For(8, true, _ => { if (ComputeContext.Current.Portable) onWorkers = true; });
        Assert.False(onWorkers);   // outside the model's passes, the caller's context
        using (model.Compute.Enter()) model.Compute.For(8, true, _ => Assert.True(ComputeContext.Current.Portable));
    }

    /// <summary>Records the context the kernels see while the model attends, layer by layer.</summary>
    private sealed class ContextSpy : ILayerObserver
    {
        public readonly List<ComputeContext> Seen = new();
        public void AfterAttention(int layer, int rows, float[] queries) { lock (Seen) Seen.Add(ComputeContext.Current); }
    }

    [Fact]
    public void Models_with_different_thread_counts_run_side_by_side_each_under_its_own_context()
    {
        var w = Weights(5);
        int[] prompt = Enumerable.Range(0, 5 * 96).Select(i => (i * 7 + 3) % 61).ToArray(); // several row tiles
        var outside = ComputeContext.Current;
        var results = new float[3][];
        var spies = new ContextSpy[3];
        var models = new[] { 1, 2, 3 }.Select(t => new LlamaModel(w, new ComputeContext(t))).ToArray();
        Parallel.For(0, 3, i =>
        {
            using var cache = models[i].NewCache();
            var logits = new float[prompt.Length * w.Config.VocabSize];
            spies[i] = new ContextSpy();
            for (int r = 0; r < 3; r++)   // interleaved with the other models' passes
                models[i].Forward(prompt, Enumerable.Range(0, prompt.Length).ToArray(), cache, LogitRows.All, logits, spies[i]);
            results[i] = logits;
        });
        for (int i = 0; i < 3; i++)
        {
            Assert.All(spies[i].Seen, c => Assert.Same(models[i].Compute, c));   // kernels saw this model's context, and no other
            Assert.Equal(i + 1, models[i].Compute.Threads);
        }
        Assert.Equal(results[0], results[1]);   // the tiling depends on rows alone: the same bits at 1, 2 and 3 threads
        Assert.Equal(results[0], results[2]);
        Assert.Same(outside, ComputeContext.Current);   // nothing left behind
    }
}
