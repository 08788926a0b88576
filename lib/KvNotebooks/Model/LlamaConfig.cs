namespace KvNotebooks.Model;

/// <summary>Llama-3.1 <c>rope_scaling</c> of type "llama3": low frequencies are divided by
/// <see cref="Factor"/>, high ones kept, the band between interpolated.</summary>
public sealed record RopeScaling(
    string Type = "llama3",
    double Factor = 8.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>
/// The architecture of a Llama-family decoder, named as in a Hugging Face <c>config.json</c>
/// (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM). Plain data: JSON reading and
/// writing live in LlamaConfig.Json.cs.
/// </summary>
public sealed partial record LlamaConfig
{
    /// <summary>"llama", "qwen2" or "mistral" (config.json <c>model_type</c>).</summary>
    public string ModelType { get; init; } = "llama";
    /// <summary>config.json <c>architectures[0]</c>.</summary>
    public string Architecture { get; init; } = "LlamaForCausalLM";
    public int VocabSize { get; init; }
    /// <summary>d_model.</summary>
    public int HiddenSize { get; init; }
    /// <summary>SwiGLU hidden size.</summary>
    public int IntermediateSize { get; init; }
    public int NumLayers { get; init; }
    /// <summary>Query heads per layer.</summary>
    public int NumHeads { get; init; }
    /// <summary>Key/value heads per layer (GQA: NumHeads is a multiple of it).</summary>
    public int NumKvHeads { get; init; }
    /// <summary>config.json <c>head_dim</c>; when absent, HiddenSize / NumHeads.</summary>
    public int HeadDim { get; init; }
    public double RmsNormEps { get; init; } = 1e-5;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public bool TieWordEmbeddings { get; init; }
    /// <summary>q/k/v projections carry a bias (Qwen2).</summary>
    public bool AttentionBias { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 8192;
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }

    /// <summary>Query heads that share one KV head.</summary>
    public int GroupSize => NumHeads / NumKvHeads;
    /// <summary>NumHeads × HeadDim: width of the attention output.</summary>
    public int QDim => NumHeads * HeadDim;
    /// <summary>NumKvHeads × HeadDim: width of the key (and value) projection.</summary>
    public int KvDim => NumKvHeads * HeadDim;

    /// <summary>Throws <see cref="InvalidDataException"/> naming the first inconsistent field.</summary>
    public void Validate(string source = "config")
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{source}: {what}");
        }
        Require(VocabSize > 0, $"vocab_size must be positive (got {VocabSize})");
        Require(HiddenSize > 0, $"hidden_size must be positive (got {HiddenSize})");
        Require(IntermediateSize > 0, $"intermediate_size must be positive (got {IntermediateSize})");
        Require(NumLayers > 0, $"num_hidden_layers must be positive (got {NumLayers})");
        Require(NumHeads > 0, $"num_attention_heads must be positive (got {NumHeads})");
        Require(NumKvHeads > 0, $"num_key_value_heads must be positive (got {NumKvHeads})");
        Require(NumHeads % NumKvHeads == 0,
            $"num_attention_heads ({NumHeads}) must be a multiple of num_key_value_heads ({NumKvHeads})");
        Require(HeadDim > 0 && HeadDim % 2 == 0, $"head_dim must be positive and even (got {HeadDim})");
        Require(RmsNormEps > 0, $"rms_norm_eps must be positive (got {RmsNormEps})");
        Require(RopeTheta > 0, $"rope_theta must be positive (got {RopeTheta})");
        Require((long)VocabSize * HiddenSize < int.MaxValue,
            $"vocab_size × hidden_size = {(long)VocabSize * HiddenSize} exceeds one array's limit");
        if (RopeScaling is { } rs)
        {
            Require(rs.Type == "llama3", $"rope_scaling type '{rs.Type}' is not supported (only 'llama3')");
            Require(rs.Factor > 0 && rs.LowFreqFactor > 0 && rs.HighFreqFactor > rs.LowFreqFactor
                    && rs.OriginalMaxPositionEmbeddings > 0,
                "rope_scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0");
        }
    }
}
