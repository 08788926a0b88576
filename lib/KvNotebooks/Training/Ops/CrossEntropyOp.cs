using System.Numerics.Tensors;

namespace KvNotebooks.Training.Ops;

/// <summary>Mean cross-entropy over the P chosen positions: loss = (1/P) Σ_p [lse(logits_p) − logits_p[target_p]].
/// The caller gathers the rows it scores (TrainableLlama computes logits only at those rows).</summary>
public static class CrossEntropyOp
{
    /// <summary>logits [P × V], targets [P] → probs [P × V] (softmax, saved for backward); returns the mean loss.</summary>
    public static double Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> probs, int positions, int vocab)
    {
        double total = 0;
        for (int p = 0; p < positions; p++)
        {
            var row = logits.Slice(p * vocab, vocab);
            var pr = probs.Slice(p * vocab, vocab);
            float max = TensorPrimitives.Max(row);
            TensorPrimitives.Subtract(row, max, pr);
            TensorPrimitives.Exp(pr, pr);
            double sum = TensorPrimitives.Sum(pr);
            TensorPrimitives.Multiply(pr, (float)(1.0 / sum), pr);
            total += max + Math.Log(sum) - row[targets[p]];
        }
        return positions == 0 ? 0 : total / positions;
    }

    /// <summary>dlogits [P × V] += dloss · (probs − onehot(target)) / P.</summary>
    public static void Backward(ReadOnlySpan<float> probs, ReadOnlySpan<int> targets, Span<float> dlogits, int positions, int vocab, float dloss = 1f)
    {
        if (positions == 0) return;
        float s = dloss / positions;
        for (int p = 0; p < positions; p++)
        {
            var pr = probs.Slice(p * vocab, vocab);
            var dr = dlogits.Slice(p * vocab, vocab);
            TensorPrimitives.MultiplyAdd(pr, s, dr, dr);
            dr[targets[p]] -= s;
        }
    }
}
