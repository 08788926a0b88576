using KvNotebooks.Cache;
using KvNotebooks.Footprint;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tests.Inference;

namespace KvNotebooks.Tests.Eviction;

/// <summary>A run with the positions every stored head keeps after every step, and every sequence row's logits.</summary>
internal sealed record SnapshotRun(Session Session, int[] Sequence, float[][] Logits, List<int[][][]> Kept, int Chunk, int PromptLength);

internal static class EvictionHarness
{
    /// <summary>Pre-fills in chunks and decodes <paramref name="gen"/> tokens, recording after each step the
    /// positions each (layer, stored head) keeps and the logits of every sequence row (the last token's excepted).</summary>
    public static SnapshotRun Run(LlamaModel model, IEvictionMethod method, int[] prompt, Chunking chunk, int gen, int pageSize = 4, KvStorage? storage = null)
    {
        int V = model.Config.VocabSize;
        var session = new Session(model, method, chunk, storage, pageSize);
        var kept = new List<int[][][]>();
        session.Progress = (_, _) => kept.Add(Snapshot(session));
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
        return new SnapshotRun(session, seq.ToArray(), rows.ToArray(), kept, chunk.EffectiveSize(prompt.Length), prompt.Length);
    }

    /// <summary>Positions held by each (layer, stored head) now.</summary>
    public static int[][][] Snapshot(Session s) =>
        Enumerable.Range(0, s.Cache.NumLayers).Select(l => Enumerable.Range(0, s.Cache.NumKvHeads)
            .Select(h => Enumerable.Range(0, s.Cache[l, h].Count).Select(s.Cache[l, h].Position).ToArray()).ToArray()).ToArray();

    /// <summary>
    /// The logits a double-precision reference computes when every query row sees exactly what the engine
    /// kept before its step plus its own step's tokens up to itself. If any evicted or dropped KV (a
    /// patch's, say) had influenced a later row, or a kept one had been lost, these would differ.
    /// </summary>
    public static double[][] ReferenceFromKeptSets(LlamaWeights w, SnapshotRun run)
    {
        int n = run.PromptLength, C = run.Chunk, chunks = (n + C - 1) / C;
        int stored = run.Session.Cache.NumKvHeads, G = w.Config.NumHeads / stored;
        var sets = run.Kept.Select(step => step.Select(layer => layer.Select(h => h.ToHashSet()).ToArray()).ToArray()).ToArray();
        return ReferenceLlama.LogitsPerQueryHead(w, run.Sequence[..^1], (l, qh, t, j) =>
        {
            if (j > t) return false;
            int step = t < n ? t / C : chunks + (t - n);
            int stepStart = t < n ? step * C : t;
            if (j >= stepStart) return true;
            return step > 0 && sets[step - 1][l][qh / G].Contains(j);
        });
    }

    public static void AssertClose(double[][] expected, float[][] actual, double tol = 2e-4)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.SelectMany(r => r).Max(Math.Abs);
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < expected[t].Length; v++)
                Assert.True(Math.Abs(expected[t][v] - actual[t][v]) <= tol * scale,
                    $"row {t}, logit {v}: expected {expected[t][v]:G6}, got {actual[t][v]:G6} (scale {scale:G3})");
    }

    public static LlamaModel Model(int layers, int kvHeads, int seed, out LlamaWeights w)
    {
        w = TinyModels.Weights(TinyModels.Config(kvHeads: kvHeads) with { NumLayers = layers }, seed);
        return new LlamaModel(w);
    }

    public static IKvScorer Scorer(string name) => name switch
    {
        "snapkv" => new SnapKV(),
        "pyramidkv" => new PyramidKV(),
        "h2o" => new H2O(),
        "l2" => new L2Norm(skipLayers: 0),
        "l2skip" => new L2Norm(skipLayers: 1),
        "zigzag" => new ZigZagKV(),
        _ => throw new ArgumentException(name),
    };
}
