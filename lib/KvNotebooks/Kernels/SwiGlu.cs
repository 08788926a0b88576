using System.Numerics.Tensors;

namespace KvNotebooks.Kernels;

/// <summary>h = silu(gate) ⊙ up, element-wise (Llama's MLP activation).</summary>
public static class SwiGlu
{
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> h)
    {
        // silu(g) = g · sigmoid(g)
        TensorPrimitives.Sigmoid(gate, h);
        TensorPrimitives.Multiply(h, gate, h);
        TensorPrimitives.Multiply(h, up, h);
    }
}
