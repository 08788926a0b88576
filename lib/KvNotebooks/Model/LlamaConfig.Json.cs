using System.Text.Json;
using System.Text.Json.Nodes;

namespace KvNotebooks.Model;

public sealed partial record LlamaConfig
{
    private static readonly string[] KnownArchitectures = ["LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"];

    /// <summary>Reads a Hugging Face <c>config.json</c>.</summary>
    public static LlamaConfig Load(string configJsonPath)
    {
        if (!File.Exists(configJsonPath)) throw new FileNotFoundException($"config file '{configJsonPath}' does not exist", configJsonPath);
        return FromJson(File.ReadAllText(configJsonPath), configJsonPath);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static LlamaConfig FromJson(string json, string source)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"{source}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON ({e.Message})");
        }

        InvalidDataException Bad(string what) => new($"{source}: {what}");
        int Int(string key, int? fallback = null)
        {
            var n = o[key];
            if (n is null) return fallback ?? throw Bad($"missing required key '{key}'");
            if (n is JsonValue v && v.TryGetValue(out long l) && l is >= int.MinValue and <= int.MaxValue) return (int)l;
            if (n is JsonValue d && d.TryGetValue(out double x) && x == Math.Floor(x) && Math.Abs(x) <= int.MaxValue) return (int)x;
            throw Bad($"'{key}' must be an integer, got {n.ToJsonString()}");
        }
        double Double(string key, double fallback)
        {
            var n = o[key];
            if (n is null) return fallback;
            if (n is JsonValue v && v.TryGetValue(out double x)) return x;
            throw Bad($"'{key}' must be a number, got {n.ToJsonString()}");
        }
        bool Bool(string key, bool fallback)
        {
            var n = o[key];
            if (n is null) return fallback;
            if (n is JsonValue v && v.TryGetValue(out bool b)) return b;
            throw Bad($"'{key}' must be true or false, got {n.ToJsonString()}");
        }
        int? OptionalId(string key)
        {
            var n = o[key];
            if (n is JsonArray a) n = a.Count > 0 ? a[0] : null;
            if (n is null) return null;
            return n is JsonValue v && v.TryGetValue(out long l) ? (int)l : throw Bad($"'{key}' must be an integer or a list of integers");
        }

        string modelType = o["model_type"]?.GetValue<string>() ?? "llama";
        string architecture = o["architectures"] is JsonArray arch && arch.Count > 0 ? arch[0]!.GetValue<string>()
            : modelType switch { "qwen2" => "Qwen2ForCausalLM", "mistral" => "MistralForCausalLM", _ => "LlamaForCausalLM" };
        if (!KnownArchitectures.Contains(architecture))
            throw Bad($"architecture '{architecture}' is not supported (supported: {string.Join(", ", KnownArchitectures)})");

        int hidden = Int("hidden_size"), heads = Int("num_attention_heads");
        if (heads <= 0) throw Bad($"num_attention_heads must be positive (got {heads})");
        RopeScaling? scaling = null;
        if (o["rope_scaling"] is JsonObject rs)
        {
            string type = (rs["rope_type"] ?? rs["type"])?.GetValue<string>() ?? "default";
            if (type != "default")
            {
                if (type != "llama3") throw Bad($"rope_scaling type '{type}' is not supported (only 'llama3' and 'default')");
                double F(string k) => rs[k] is JsonValue v && v.TryGetValue(out double x) ? x : throw Bad($"rope_scaling is missing '{k}'");
                scaling = new RopeScaling("llama3", F("factor"), F("low_freq_factor"), F("high_freq_factor"), (int)F("original_max_position_embeddings"));
            }
        }
        else if (o["rope_scaling"] is { } other && other.GetValueKind() != JsonValueKind.Null)
            throw Bad("rope_scaling must be an object or null");

        var config = new LlamaConfig
        {
            ModelType = modelType,
            Architecture = architecture,
            VocabSize = Int("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = Int("intermediate_size"),
            NumLayers = Int("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = Int("num_key_value_heads", heads),
            HeadDim = o["head_dim"] is null || o["head_dim"]!.GetValueKind() == JsonValueKind.Null ? hidden / heads : Int("head_dim"),
            RmsNormEps = Double("rms_norm_eps", 1e-6),
            RopeTheta = Double("rope_theta", 10000.0),
            RopeScaling = scaling,
            TieWordEmbeddings = Bool("tie_word_embeddings", false),
            AttentionBias = modelType == "qwen2" || architecture == "Qwen2ForCausalLM" || Bool("attention_bias", false),
            MaxPositionEmbeddings = Int("max_position_embeddings", 8192),
            BosTokenId = OptionalId("bos_token_id"),
            EosTokenId = OptionalId("eos_token_id"),
        };
        config.Validate(source);
        return config;
    }

    /// <summary>The config as Hugging Face <c>config.json</c> text.</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKvHeads,
            ["head_dim"] = HeadDim,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["rope_scaling"] = RopeScaling is { } s ? new JsonObject
            {
                ["rope_type"] = s.Type, ["factor"] = s.Factor, ["low_freq_factor"] = s.LowFreqFactor,
                ["high_freq_factor"] = s.HighFreqFactor, ["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings,
            } : null,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_bias"] = AttentionBias,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["torch_dtype"] = "float32",
        };
        if (BosTokenId is { } bos) o["bos_token_id"] = bos;
        if (EosTokenId is { } eos) o["eos_token_id"] = eos;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Writes config.json atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, ToJson());
}
