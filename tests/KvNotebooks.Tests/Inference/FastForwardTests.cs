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

    private static float[] Prefill(LlamaModel model, int[] prompt, int chunk, int threads, int pageSize = 64)
    {
        int saved = KernelOptions.Threads;
        KernelOptions.Threads = threads;
        try
        {
            var session = new Session(model, new FullAttention(), chunk, pageSize);
            var all = new float[prompt.Length * model.Config.VocabSize];
            session.Prefill(prompt, all);
            return all;
        }
        finally { KernelOptions.Threads = saved; }
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
        var model = new LlamaModel(w);
        var prompt = TinyModels.Tokens(300, V, seed: 6);
        var single = Prefill(model, prompt, int.MaxValue, threads: 2);
        var reference = ReferenceLlama.Logits(w, prompt, (_, _, q, k) => k <= q);
        Close(reference, single, V, 2e-4, "single pre-fill vs reference");

        Assert.Equal(single, Prefill(model, prompt, int.MaxValue, threads: 1));     // tiles and attention items are row-local
        var asDouble = Enumerable.Range(0, prompt.Length).Select(t => single.AsSpan(t * V, V).ToArray().Select(x => (double)x).ToArray()).ToArray();
        foreach (int chunk in new[] { 100, 37, 5 })
            Close(asDouble, Prefill(model, prompt, chunk, threads: 2), V, 1e-5, $"chunk {chunk}");
        Close(asDouble, Prefill(model, prompt, 120, threads: 2, pageSize: 4), V, 1e-5, "pages of 4 (portable attention)");
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
        var fast = Prefill(new LlamaModel(w), prompt, int.MaxValue, threads: 2);
        Gemm.ForcePortable = true;
        try
        {
            var portable = Prefill(new LlamaModel(w), prompt, int.MaxValue, threads: 2);
            var asDouble = Enumerable.Range(0, prompt.Length).Select(t => fast.AsSpan(t * V, V).ToArray().Select(x => (double)x).ToArray()).ToArray();
            Close(asDouble, portable, V, 1e-5, "portable vs AVX-512");
        }
        finally { Gemm.ForcePortable = false; }
    }

    /// <summary>Raises <see cref="KernelOptions.Threads"/> after a layer's attention, i.e. after the model sized its
    /// per-worker scratch for this forward pass (another thread, or a test running beside this one, can do that).</summary>
    private sealed class ThreadsBump(int to) : ILayerObserver
    {
        public void AfterAttention(int layer, int rows, float[] queries) => KernelOptions.Threads = to;
    }

    [Fact]
    public void More_threads_set_in_the_middle_of_a_forward_pass_use_only_the_scratch_there_is()
    {
        var model = new LlamaModel(Weights(5));
        int[] prompt = Enumerable.Range(0, 5 * 96).Select(i => (i * 7 + 3) % 61).ToArray(); // several row tiles
        var expected = Prefill(model, prompt, int.MaxValue, threads: 1);
        int saved = KernelOptions.Threads;
        KernelOptions.Threads = 1;
        try
        {
            using var cache = new KvCache(model.Config.NumLayers, model.Config.NumKvHeads, model.Config.HeadDim);
            var logits = new float[prompt.Length * model.Config.VocabSize];
            // Before WorkQueue took the scratch count, this could throw IndexOutOfRangeException in the MLP tiles (2 workers,
            // 1 scratch) when the second worker got a tile (it did once in CI, through a test changing Threads beside it).
            model.Forward(prompt, Enumerable.Range(0, prompt.Length).ToArray(), cache, LogitRows.All, logits, new ThreadsBump(4));
            Assert.Equal(expected, logits); // the tiling depends on rows alone: the same bits
        }
        finally { KernelOptions.Threads = saved; }
    }
}
