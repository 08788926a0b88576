using KvNotebooks.Validation;

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

    // Caps far above any real Llama-family model, so a typo or a corrupt file cannot make the loader
    // build millions of tensor names or allocate without bound.
    public const int MaxLayers = 1024, MaxHeads = 4096, MaxHeadDim = 65536, MaxHiddenSize = 1 << 20,
        MaxIntermediateSize = 1 << 24, MaxVocabSize = 1 << 28, MaxPositions = 1 << 24;

    /// <summary>Every weight, counted in 64 bits (embedding, layers, final norm, lm_head unless tied).</summary>
    public long ParameterCount
    {
        get
        {
            long d = HiddenSize, q = (long)NumHeads * HeadDim, kv = (long)NumKvHeads * HeadDim;
            long layer = 2 * d + q * d + 2 * kv * d + d * q + 3L * IntermediateSize * d + (AttentionBias ? q + 2 * kv : 0);
            return (long)VocabSize * d * (TieWordEmbeddings ? 1 : 2) + NumLayers * layer + d;
        }
    }

    /// <summary>Throws <see cref="InputException"/> naming the first inconsistent field (keys as in config.json,
    /// under <paramref name="path"/> when the config sits inside another file).</summary>
    public void Validate(string source = "config", string path = "")
    {
        void Require(bool ok, string key, string what)
        {
            if (!ok) throw new InputException(source, InputException.Join(path, key), what);
        }
        Require(VocabSize is > 0 and <= MaxVocabSize, "vocab_size", $"must be in [1, {MaxVocabSize}] (got {VocabSize})");
        Require(HiddenSize is > 0 and <= MaxHiddenSize, "hidden_size", $"must be in [1, {MaxHiddenSize}] (got {HiddenSize})");
        Require(IntermediateSize is > 0 and <= MaxIntermediateSize, "intermediate_size", $"must be in [1, {MaxIntermediateSize}] (got {IntermediateSize})");
        Require(NumLayers is > 0 and <= MaxLayers, "num_hidden_layers", $"must be in [1, {MaxLayers}] (got {NumLayers})");
        Require(NumHeads is > 0 and <= MaxHeads, "num_attention_heads", $"must be in [1, {MaxHeads}] (got {NumHeads})");
        Require(NumKvHeads > 0, "num_key_value_heads", $"must be positive (got {NumKvHeads})");
        Require(NumHeads % NumKvHeads == 0, "num_key_value_heads",
            $"num_attention_heads ({NumHeads}) must be a multiple of num_key_value_heads ({NumKvHeads})");
        Require(HeadDim > 0 && HeadDim <= MaxHeadDim && HeadDim % 2 == 0, "head_dim", $"must be positive and even, at most {MaxHeadDim} (got {HeadDim})");
        Require(double.IsFinite(RmsNormEps) && RmsNormEps > 0, "rms_norm_eps", $"must be positive and finite (got {RmsNormEps})");
        Require(double.IsFinite(RopeTheta) && RopeTheta > 0, "rope_theta", $"must be positive and finite (got {RopeTheta})");
        Require(MaxPositionEmbeddings is > 0 and <= MaxPositions, "max_position_embeddings", $"must be in [1, {MaxPositions}] (got {MaxPositionEmbeddings})");
        Require(BosTokenId is null || (uint)BosTokenId < (uint)VocabSize, "bos_token_id", $"must be a token id in [0, {VocabSize}) (got {BosTokenId})");
        Require(EosTokenId is null || (uint)EosTokenId < (uint)VocabSize, "eos_token_id", $"must be a token id in [0, {VocabSize}) (got {EosTokenId})");
        // One array per tensor: each must fit .NET's array limit (checked in 64 bits, before any int product).
        long d = HiddenSize, qDim = (long)NumHeads * HeadDim, kvDim = (long)NumKvHeads * HeadDim;
        foreach (var (key, rows, cols) in new[] { ("vocab_size", (long)VocabSize, d), ("num_attention_heads", qDim, d),
                     ("num_key_value_heads", kvDim, d), ("intermediate_size", (long)IntermediateSize, d) })
            Require(rows * cols <= Array.MaxLength, key, $"a [{rows} × {cols}] weight exceeds one array's limit ({Array.MaxLength:N0} values)");
        long bytes = ParameterCount * sizeof(float), memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        Require(bytes <= memory, "num_hidden_layers",
            $"the model needs {bytes / (1 << 20):N0} MiB of fp32 weights ({NumLayers} layers × {NumHeads} heads × head size {HeadDim}, hidden {HiddenSize}, " +
            $"intermediate {IntermediateSize}, vocab {VocabSize}); this machine has {memory / (1 << 20):N0} MiB");
        if (RopeScaling is { } rs)
        {
            Require(rs.Type == "llama3", "rope_scaling.rope_type", $"rope_scaling type '{rs.Type}' is not supported (only 'llama3')");
            Require(double.IsFinite(rs.Factor) && double.IsFinite(rs.HighFreqFactor) && rs.Factor > 0 && rs.LowFreqFactor > 0 && rs.HighFreqFactor > rs.LowFreqFactor
                    && rs.OriginalMaxPositionEmbeddings > 0, "rope_scaling",
                "rope_scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0");
        }
    }
}
