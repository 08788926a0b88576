namespace KvNotebooks.Model;

/// <summary>One decoder layer's parameters, each a row-major fp32 array in Hugging Face
/// <c>nn.Linear</c> layout [out × in].</summary>
public sealed class LayerWeights
{
    public required float[] InputNorm { get; init; }   // [d]
    public required float[] Wq { get; init; }          // [QDim × d]
    public required float[] Wk { get; init; }          // [KvDim × d]
    public required float[] Wv { get; init; }          // [KvDim × d]
    public float[]? Bq { get; init; }                  // [QDim]  (Qwen2)
    public float[]? Bk { get; init; }                  // [KvDim]
    public float[]? Bv { get; init; }                  // [KvDim]
    public required float[] Wo { get; init; }          // [d × QDim]
    public required float[] PostNorm { get; init; }    // [d]
    public required float[] WGate { get; init; }       // [ff × d]
    public required float[] WUp { get; init; }         // [ff × d]
    public required float[] WDown { get; init; }       // [d × ff]
}

/// <summary>All parameters of a Llama-family model, computed in fp32 whatever the stored dtype.
/// Loading, saving and random initialisation live in LlamaWeights.IO.cs.</summary>
public sealed partial class LlamaWeights
{
    public required LlamaConfig Config { get; init; }
    public required float[] Embedding { get; init; }    // [V × d]
    public required LayerWeights[] Layers { get; init; }
    public required float[] FinalNorm { get; init; }    // [d]
    /// <summary>[V × d]; the same array as <see cref="Embedding"/> when embeddings are tied.</summary>
    public required float[] LmHead { get; init; }
}
