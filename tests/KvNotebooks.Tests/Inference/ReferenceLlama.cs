using KvNotebooks.Model;
using KvNotebooks.Tests.Torch;
using KvNotebooks.Torch;
using static TorchSharp.torch;

namespace KvNotebooks.Tests.Inference;

/// <summary>
/// The eviction and session tests' view of the one reference, <see cref="TorchLlama"/> (LibTorch, written from
/// transformers' modeling code) in fp64, over a whole sequence with an explicit attention rule:
/// visible(layer, head, queryPos, keyPos). Independent of the engine's kernels, cache and RoPE code.
/// </summary>
internal static class ReferenceLlama
{
    public delegate bool Visible(int layer, int kvHead, int query, int key);
    /// <summary>Visibility per query head (a cache replicated per query head keeps a set per query head).</summary>
    public delegate bool VisibleQ(int layer, int queryHead, int query, int key);

    /// <summary>Logits [T][V] for every position of <paramref name="tokens"/>. <paramref name="layerQk"/>,
    /// when given, sees each layer's post-RoPE queries [T][QDim] and keys [T][KvDim].</summary>
    public static double[][] Logits(LlamaWeights w, int[] tokens, Visible visible, Action<int, double[][], double[][]>? layerQk = null) =>
        LogitsPerQueryHead(w, tokens, (l, h, q, k) => visible(l, h / w.Config.GroupSize, q, k), layerQk);

    /// <summary>As above, with visibility decided per query head.</summary>
    public static double[][] LogitsPerQueryHead(LlamaWeights w, int[] tokens, VisibleQ visible, Action<int, double[][], double[][]>? layerQk = null)
    {
        var c = w.Config;
        int T = tokens.Length, H = c.NumHeads;
        TorchRuntime.Require();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var model = TorchLlama.FromWeights(w, ScalarType.Float64);
        Tensor Mask(int layer)
        {
            var m = new bool[H * T * T];
            for (int h = 0; h < H; h++)
                for (int i = 0; i < T; i++)
                    for (int j = 0; j <= i; j++) m[(h * T + i) * T + j] = visible(layer, h, i, j);
            return tensor(m, [H, T, T]);
        }
        double[][] Rows(Tensor x) // [heads × T × hd] → [T][heads·hd]
        {
            var flat = TorchTensors.Doubles(x.transpose(0, 1).reshape(T, -1));
            int width = flat.Length / T;
            return Enumerable.Range(0, T).Select(t => flat.AsSpan(t * width, width).ToArray()).ToArray();
        }
        var logits = TorchTensors.Doubles(model.Logits(tokens, new TorchForwardOptions
        {
            Visible = Mask,
            OnQueriesKeys = layerQk is null ? null : (l, q, k) => layerQk(l, Rows(q), Rows(k)),
        }));
        int V = c.VocabSize;
        return Enumerable.Range(0, T).Select(t => logits.AsSpan(t * V, V).ToArray()).ToArray();
    }
}
