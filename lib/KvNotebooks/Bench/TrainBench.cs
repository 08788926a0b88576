using System.Diagnostics;
using KvNotebooks.Kernels;
using KvNotebooks.Model;
using KvNotebooks.Training;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Bench;

/// <summary>Speed of one training step of <see cref="TrainableLlama"/>; <see cref="Breakdown"/> (each op's
/// least seconds per step over the timed steps, when asked for) says where the time went.</summary>
public sealed record TrainBenchResult(
    int SeqLen, int Batch, int LossPositions, bool OptimizerStep, bool LossRowsPath, int Threads, double Seconds,
    double TokensPerSecond, double Gflops, double PeakGflops, double FractionOfPeak,
    IReadOnlyList<TrainBenchOp>? Breakdown);

/// <summary>Seconds per step spent in one op (all layers together).</summary>
public sealed record TrainBenchOp(string Op, double Seconds);

/// <summary>
/// Training-step benchmark: ZeroGrad + forward + backward of a whole model on <c>batch</c> random
/// sequences of <c>seqLen</c> tokens with the loss at <c>lossPositions</c> positions per sequence
/// (+ one AdamW update when <c>optimizerStep</c>), best of several steps after a warm-up; with the last layer
/// on the loss rows only (<see cref="TrainableLlama.LastLayerOnLossRows"/>, what training uses) or, for
/// comparison, the full pass. GFLOP/s counts the work the chosen path executes, so the fraction of peak stays honest.
/// </summary>
public static class TrainBench
{
    /// <summary>Runs the benchmark on <paramref name="weights"/> (which it trains: pass a copy you do not need).</summary>
    public static TrainBenchResult Run(LlamaWeights weights, int seqLen, int batch, int threads, int lossPositions = 8,
        bool optimizerStep = false, int repeats = 3, bool breakdown = false, bool lossRowsOnly = true)
    {
        if (seqLen < 1 || batch < 1 || threads < 1 || repeats < 1) throw new ArgumentException("--tokens, --batch, --threads must be positive");
        var c = weights.Config;
        int P = Math.Min(lossPositions, seqLen);
        var model = new TrainableLlama(weights, new ComputeContext(threads)) { LastLayerOnLossRows = lossRowsOnly };
        var rng = new Random(1234);
        var tokens = Enumerable.Range(0, seqLen * batch).Select(_ => rng.Next(c.VocabSize)).ToArray();
        // P positions per sequence, increasing, spread over its second half (answer positions come late);
        // every position when P is the sequence length (language-model pre-training's loss)
        var positions = new int[P * batch];
        var targets = new int[P * batch];
        for (int b = 0; b < batch; b++)
            for (int p = 0; p < P; p++)
            {
                positions[b * P + p] = b * seqLen + (P == seqLen ? p : seqLen - 1 - (P - 1 - p) * (seqLen / 2) / Math.Max(1, P));
                targets[b * P + p] = rng.Next(c.VocabSize);
            }
        var opt = optimizerStep ? new AdamW(model.Parameters, AdamW.DefaultGroups(1e-4)) : null;
        var timer = breakdown ? new StepTimer() : null;

        // The peak is measured before, between and after the steps and the highest kept: on a shared
        // machine a single measurement can land in a moment when another process holds a core.
        double peak = PeakFlops.Measure(threads);
        double best = double.MaxValue;
        using (new ComputeContext(threads).Enter())   // the optimizer step too
        {
            // warm-up: two steps (buffers allocated, JIT tiered up for the hot loops)
            for (int r = 0; r < repeats + 2; r++)
            {
                if (r == 2) model.Timer = timer;
                var sw = Stopwatch.StartNew();
                model.ZeroGrad();
                model.ForwardBackward(tokens, positions, targets, 1f / batch, batch);
                if (opt is not null) { opt.Step(); timer?.Mark("adamw"); }
                if (r >= 2) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                timer?.EndStep();
                if (r >= 2) peak = Math.Max(peak, PeakFlops.Measure(threads));
            }
        }

        bool lossRows = model.LastForwardOnLossRows;
        double flops = lossRows ? StepFlopsLossRows(c, seqLen, batch, positions) : StepFlops(c, seqLen, batch, P * batch);
        peak = Math.Max(peak, PeakFlops.Measure(threads));
        double gflops = flops / best / 1e9;
        var ops = timer?.Totals.Select(t => new TrainBenchOp(t.Op, t.Seconds)).ToList();
        return new TrainBenchResult(seqLen, batch, P, optimizerStep, lossRows, threads, best, seqLen * (double)batch / best, gflops, peak, gflops / peak, ops);
    }

    /// <summary>
    /// FLOPs of one forward + backward, counted as useful work (2 per multiply-add):
    /// every Linear ×3 (forward, dX, dW) over all rows, the LM head ×3 over the loss rows only;
    /// causal attention per query head and visible (query, key) pair: forward 4·hd (S = QKᵀ, O = PV),
    /// backward 8·hd (dV, dP, dQ, dK) + 2·hd for recomputing S from the saved log-sum-exp = 14·hd in all.
    /// Norms, softmax exponentials, RoPE, SwiGLU and the optimizer are not counted.
    /// </summary>
    public static double StepFlops(LlamaConfig c, int seqLen, int batch, int lossRows)
    {
        double layerMacsPerToken = (double)c.HiddenSize * (c.QDim + 2 * c.KvDim) + (double)c.QDim * c.HiddenSize
                                   + 3.0 * c.HiddenSize * c.IntermediateSize;
        double linear = 3 * 2 * (c.NumLayers * layerMacsPerToken * seqLen * batch + (double)lossRows * c.HiddenSize * c.VocabSize);
        double pairs = seqLen * (seqLen + 1.0) / 2 * batch;
        double attention = 14.0 * c.HeadDim * c.NumHeads * c.NumLayers * pairs;
        return linear + attention;
    }

    /// <summary>
    /// <see cref="StepFlops"/> for the path that runs the last layer on the loss rows only: there q_proj runs forward
    /// on every row (the attention tiles read it) but backward only on the loss rows, k/v_proj on every row, o_proj and
    /// the MLP on the loss rows packed to an even count of at least 8 (weight gradients on the loss rows themselves), and
    /// attention on the queries of the 64-row blocks that hold a loss row.
    /// </summary>
    public static double StepFlopsLossRows(LlamaConfig c, int seqLen, int batch, IReadOnlyList<int> positions)
    {
        int P = positions.Count, P2 = TrainableLlama.PackedRows(P), B = FlashAttention.RowBlockSize;
        double N = (double)seqLen * batch;
        double q = (double)c.HiddenSize * c.QDim, kv = 2.0 * c.HiddenSize * c.KvDim, o = (double)c.QDim * c.HiddenSize,
               mlp = 3.0 * c.HiddenSize * c.IntermediateSize;
        double full = StepFlops(c, seqLen, batch, P);
        double lastLinearFull = 3 * 2 * (q + kv + o + mlp) * N;
        double lastLinear = 2 * (3 * kv * N + q * N + P2 * (q + o + mlp) + P2 * (o + mlp) + P * (q + o + mlp));
        double pairsFull = seqLen * (seqLen + 1.0) / 2 * batch, pairsActive = 0;
        var active = new HashSet<(int, int)>(positions.Select(p => (p / seqLen, p % seqLen / B)));
        foreach (var (_, block) in active)
            for (int i = block * B; i < Math.Min(seqLen, block * B + B); i++) pairsActive += i + 1;
        double lastAttention = 14.0 * c.HeadDim * c.NumHeads * (pairsActive - pairsFull);
        return full - lastLinearFull + lastLinear + lastAttention;
    }
}
