using System.Numerics.Tensors;

namespace KvNotebooks.Training.Ops;

/// <summary>Token embedding lookup: x[t] = table[tokens[t]].</summary>
/// <remarks>All Backward methods in Training/Ops ACCUMULATE (+=) into their gradient outputs, as in
/// llm.c: the caller zeroes buffers once per step, and residual branches add up for free.
/// An empty gradient span means "not needed" (frozen) and is skipped.</remarks>
public static class EmbeddingOp
{
    /// <summary>tokens [T], table [V × d] → x [T × d].</summary>
    public static void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> table, Span<float> x, int d)
    {
        for (int t = 0; t < tokens.Length; t++)
            table.Slice(tokens[t] * d, d).CopyTo(x.Slice(t * d, d));
    }

    /// <summary>dx [T × d] → dTable [V × d] += dx[t] at row tokens[t].</summary>
    public static void Backward(ReadOnlySpan<int> tokens, ReadOnlySpan<float> dx, Span<float> dTable, int d)
    {
        if (dTable.IsEmpty) return;
        for (int t = 0; t < tokens.Length; t++)
        {
            var row = dTable.Slice(tokens[t] * d, d);
            TensorPrimitives.Add(row, dx.Slice(t * d, d), row);
        }
    }
}
