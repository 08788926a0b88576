using KvNotebooks.Model;

namespace KvNotebooks.Bench;

/// <summary>The LibTorch side of <c>kvnb bench --vs-torch</c>, implemented in lib/KvNotebooks.Torch (which the CLI
/// loads only for that option, so nothing else needs libtorch). Each method returns the best wall seconds.</summary>
public interface ITorchBenchPeer
{
    /// <summary>What runs: e.g. "LibTorch 2.10.0 (TorchSharp 0.107.0), CPU".</summary>
    string Describe();
    /// <summary>LibTorch's intra-op threads.</summary>
    void SetThreads(int threads);
    /// <summary>A single pre-fill of <paramref name="prompt"/> into a fresh KV cache, logits of the last row.</summary>
    double Prefill(LlamaWeights weights, int[] prompt, int repeats);
    /// <summary>Greedy decode of <paramref name="steps"/> tokens after a pre-fill of <paramref name="prompt"/> (not timed).</summary>
    double Decode(LlamaWeights weights, int[] prompt, int steps);
    /// <summary>Forward + backward of the mean cross-entropy of every position's next token (gradients of every parameter).</summary>
    double Train(LlamaWeights weights, int[] tokens, int[] targets, int repeats);
    /// <summary>Causal attention of one layer over <paramref name="tokens"/> tokens.</summary>
    double Attention(int tokens, int heads, int kvHeads, int headDim, int repeats);
    /// <summary>C = A·Bᵀ with A, B [n × n].</summary>
    double Gemm(int n, int repeats);
}

/// <summary>One row of the comparison: our figure, LibTorch's, and ours / LibTorch's (higher is better for us).</summary>
public sealed record VsTorchRow(string Figure, string Unit, double Ours, double Torch)
{
    public double Ratio => Ours / Torch;
}

/// <summary>The comparison table plus each side's process peak resident memory during its pre-fill.</summary>
public sealed record VsTorchReport(string Model, string Torch, int Tokens, int Threads, IReadOnlyList<VsTorchRow> Rows,
    long OursPrefillPeakBytes, long TorchPrefillPeakBytes);

/// <summary>
/// Runs our engine and LibTorch on the same weights, tokens and thread count, one figure after the other: pre-fill and
/// decode at <c>tokens</c> of context, a training step (forward + backward, cross-entropy over all positions), one
/// attention layer and a square GEMM. Peak memory is the process's peak resident set (VmHWM) during each side's
/// pre-fill, reset before it (/proc/self/clear_refs); ours runs first, before LibTorch is loaded.
/// </summary>
public static class VsTorchBench
{
    public static VsTorchReport Run(ITorchBenchPeer peer, LlamaWeights weights, string modelName, int tokens, int decodeSteps,
        int threads, int gemmSize, Action<string>? progress = null)
    {
        if (tokens < 2 || decodeSteps < 1 || threads < 1 || gemmSize < 1) throw new ArgumentException("--tokens ≥ 2, --steps, --threads and --gemm must be positive");
        var c = weights.Config;
        var prompt = ModelBench.RandomTokens(tokens, c.VocabSize);
        var rows = new List<VsTorchRow>();
        const int repeats = 3;

        progress?.Invoke("pre-fill");
        ProcessMemory.TryResetPeak();
        var ours = ModelBench.Prefill(weights, tokens, threads, repeats);
        long oursPeak = ProcessMemory.PeakResidentBytes() ?? 0;
        ProcessMemory.TryResetPeak();
        peer.SetThreads(threads);
        double torchPrefill = peer.Prefill(weights, prompt, repeats);
        long torchPeak = ProcessMemory.PeakResidentBytes() ?? 0;
        rows.Add(new($"pre-fill at {tokens:N0}", "tokens/s", ours.TokensPerSecond, tokens / torchPrefill));

        progress?.Invoke("decode");
        var decode = ModelBench.Decode(weights, tokens, decodeSteps, threads);
        rows.Add(new($"decode at {tokens:N0}", "tokens/s", decode.TokensPerSecond, decodeSteps / peer.Decode(weights, prompt, decodeSteps)));

        progress?.Invoke("training");
        var train = TrainBench.Run(weights, tokens, 1, threads, lossPositions: tokens, repeats: repeats);   // no optimizer: weights unchanged
        var targets = prompt.Skip(1).Append(prompt[0]).ToArray();
        rows.Add(new($"training at {tokens:N0} (fwd + bwd)", "tokens/s", train.TokensPerSecond, tokens / peer.Train(weights, prompt, targets, repeats)));

        progress?.Invoke("attention");
        var att = KernelBench.Attention(tokens, c.NumHeads, c.NumKvHeads, c.HeadDim, threads, repeats);
        double attFlops = 4.0 * c.HeadDim * c.NumHeads * (tokens * (tokens + 1.0) / 2);
        rows.Add(new($"attention layer at {tokens:N0}", "GFLOP/s", att.Gflops, attFlops / peer.Attention(tokens, c.NumHeads, c.NumKvHeads, c.HeadDim, repeats) / 1e9));

        progress?.Invoke("gemm");
        var gemm = KernelBench.Gemm(gemmSize, gemmSize, gemmSize, threads, repeats);
        rows.Add(new($"GEMM {gemmSize}³", "GFLOP/s", gemm.Gflops, 2.0 * gemmSize * gemmSize * gemmSize / peer.Gemm(gemmSize, repeats) / 1e9));

        return new VsTorchReport(modelName, peer.Describe(), tokens, threads, rows, oursPeak, torchPeak);
    }
}
