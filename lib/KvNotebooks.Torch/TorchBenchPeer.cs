using System.Diagnostics;
using KvNotebooks.Bench;
using KvNotebooks.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace KvNotebooks.Torch;

/// <summary>LibTorch's side of <c>kvnb bench --vs-torch</c>: <see cref="TorchLlama"/> in fp32 as transformers runs a
/// Llama (inference under no_grad with a KV cache, attention by scaled_dot_product_attention), autograd for training,
/// <c>torch.matmul</c> for the GEMM. Each figure is the best of its repeats after one warm-up run.</summary>
public sealed class TorchBenchPeer : ITorchBenchPeer
{
    public string Describe() => $"LibTorch {torch.__version__} (TorchSharp {typeof(torch).Assembly.GetName().Version?.ToString(3)}), CPU, {get_num_threads()} threads";

    public void SetThreads(int threads) => TorchRuntime.SetThreads(threads);

    public double Prefill(LlamaWeights weights, int[] prompt, int repeats)
    {
        using var model = TorchLlama.FromWeights(weights);
        return Best(repeats, () =>
        {
            using var cache = new TorchLlama.Cache(model.Config, prompt.Length, ScalarType.Float32);
            model.Step(prompt, cache);
        });
    }

    public double Decode(LlamaWeights weights, int[] prompt, int steps)
    {
        using var model = TorchLlama.FromWeights(weights);
        // warm-up: a short pre-fill and a few decode steps
        Generate(model, prompt[..Math.Min(prompt.Length, 64)], 16);
        return Generate(model, prompt, steps);
    }

    /// <summary>Pre-fills <paramref name="prompt"/>, then times <paramref name="steps"/> greedy decode steps.</summary>
    private static double Generate(TorchLlama model, int[] prompt, int steps)
    {
        using var cache = new TorchLlama.Cache(model.Config, prompt.Length + steps, ScalarType.Float32);
        int next;
        using (var scope = NewDisposeScope()) next = (int)model.Step(prompt, cache).argmax().item<long>();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            next = (int)model.Step([next], cache).argmax().item<long>();
        }
        return sw.Elapsed.TotalSeconds;
    }

    public double Train(LlamaWeights weights, int[] tokens, int[] targets, int repeats)
    {
        using var model = TorchLlama.FromWeights(weights);
        model.RequireGradients();
        return Best(repeats, () =>
        {
            foreach (var p in model.Parameters.Values) p.grad?.zero_();
            model.TrainingLoss(tokens, targets).backward();
        });
    }

    public double Attention(int tokens, int heads, int kvHeads, int headDim, int repeats)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(2);
        var q = rand([1, heads, tokens, headDim], generator: gen) - 0.5;
        var k = rand([1, kvHeads, tokens, headDim], generator: gen) - 0.5;
        var v = rand([1, kvHeads, tokens, headDim], generator: gen) - 0.5;
        if (heads != kvHeads) { k = k.repeat_interleave(heads / kvHeads, 1); v = v.repeat_interleave(heads / kvHeads, 1); }
        using var noGrad = no_grad();
        return Best(repeats, () => nn.functional.scaled_dot_product_attention(q, k, v, null, 0, true));
    }

    public double Gemm(int n, int repeats)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(1);
        var a = rand([n, n], generator: gen) - 0.5;
        var b = rand([n, n], generator: gen) - 0.5;
        return Best(repeats, () => a.matmul(b.t()));
    }

    /// <summary>Best wall seconds of <paramref name="repeats"/> runs after a warm-up; tensors made by a run are freed after it.</summary>
    private static double Best(int repeats, Action work)
    {
        double best = double.MaxValue;
        for (int r = 0; r <= repeats; r++)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            work();
            if (r > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}
