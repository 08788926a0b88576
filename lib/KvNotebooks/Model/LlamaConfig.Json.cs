using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Validation;

namespace KvNotebooks.Model;

public sealed partial record LlamaConfig
{
    private static readonly string[] KnownArchitectures = ["LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"];

    /// <summary>config.json files larger than this are refused before reading (real ones are a few KB).</summary>
    public const long MaxFileBytes = 1 << 20;

    /// <summary>Reads a Hugging Face <c>config.json</c>; every problem is an <see cref="InputException"/> naming the key.</summary>
    public static LlamaConfig Load(string configJsonPath)
    {
        var bytes = InputFile.ReadAllBytes(configJsonPath, "config", MaxFileBytes);
        using var doc = StrictJson.Parse(bytes, configJsonPath);
        return FromJson(new JsonField(doc.RootElement, configJsonPath));
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static LlamaConfig FromJson(string json, string source)
    {
        using var doc = StrictJson.Parse(json, source);
        return FromJson(new JsonField(doc.RootElement, source));
    }

    /// <summary>Reads a config object wherever it sits (config.json's root, a training config's "model").</summary>
    public static LlamaConfig FromJson(JsonField o)
    {
        if (o.Kind != JsonValueKind.Object) throw o.Error($"must be a JSON object (a Hugging Face config.json){o.Got()}");
        JsonField Required(string key) => o[key] is { IsMissing: false } f ? f : throw o[key].Error($"missing required key '{key}'");

        string modelType = o["model_type"].OptionalString() ?? "llama";
        string architecture;
        var arch = o["architectures"];
        if (!arch.IsMissing && arch.Items(maxLength: 16) is { Count: > 0 } archs) architecture = archs[0].String();
        else architecture = modelType switch { "qwen2" => "Qwen2ForCausalLM", "mistral" => "MistralForCausalLM", _ => "LlamaForCausalLM" };
        if (!KnownArchitectures.Contains(architecture))
            throw (arch.IsMissing ? o["model_type"] : arch).Error(
                $"architecture '{StrictJson.Printable(architecture)}' is not supported (supported: {string.Join(", ", KnownArchitectures)})");

        int hidden = Required("hidden_size").Int(1, MaxHiddenSize);
        int heads = Required("num_attention_heads").Int(1, MaxHeads);
        int headDim;
        if (o["head_dim"].IsMissing)
        {
            if (hidden % heads != 0)
                throw o["head_dim"].Error($"is needed: hidden_size {hidden} is not a multiple of num_attention_heads {heads}, so the head size is not hidden_size / heads");
            headDim = hidden / heads;
        }
        else headDim = o["head_dim"].Int(1, MaxHeadDim);

        RopeScaling? scaling = null;
        var rs = o["rope_scaling"];
        if (!rs.IsMissing)
        {
            if (rs.Kind != JsonValueKind.Object) throw rs.Error($"must be an object or null{rs.Got()}");
            var typeField = rs["rope_type"].IsMissing ? rs["type"] : rs["rope_type"];
            string type = typeField.OptionalString() ?? "default";
            if (type != "default")
            {
                if (type != "llama3") throw typeField.Error($"rope_scaling type '{StrictJson.Printable(type)}' is not supported (only 'llama3' and 'default')");
                double F(string k) => rs[k].IsMissing ? throw rs[k].Error($"rope_scaling is missing '{k}'") : rs[k].Double(0, 1e9, minExclusive: true);
                scaling = new RopeScaling("llama3", F("factor"), F("low_freq_factor"), F("high_freq_factor"),
                    rs["original_max_position_embeddings"].IsMissing ? throw rs["original_max_position_embeddings"].Error("rope_scaling is missing 'original_max_position_embeddings'")
                        : rs["original_max_position_embeddings"].Int(1, MaxPositions));
            }
        }

        int vocab = Required("vocab_size").Int(1, MaxVocabSize);
        int? OptionalId(string key)
        {
            var n = o[key];
            if (n.IsMissing) return null;
            if (n.Kind == JsonValueKind.Array)
            {
                var items = n.Items(maxLength: 1024);
                foreach (var item in items) item.Int(0, vocab - 1);
                return items.Count > 0 ? items[0].Int(0, vocab - 1) : null;
            }
            return n.Int(0, vocab - 1);
        }

        var config = new LlamaConfig
        {
            ModelType = modelType,
            Architecture = architecture,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = Required("intermediate_size").Int(1, MaxIntermediateSize),
            NumLayers = Required("num_hidden_layers").Int(1, MaxLayers),
            NumHeads = heads,
            NumKvHeads = o["num_key_value_heads"].Int(heads, 1, MaxHeads),
            HeadDim = headDim,
            RmsNormEps = o["rms_norm_eps"].Double(1e-6, 0, 1, minExclusive: true),
            RopeTheta = o["rope_theta"].Double(10000.0, 0, 1e15, minExclusive: true),
            RopeScaling = scaling,
            TieWordEmbeddings = o["tie_word_embeddings"].Bool(false),
            AttentionBias = modelType == "qwen2" || architecture == "Qwen2ForCausalLM" || o["attention_bias"].Bool(false),
            MaxPositionEmbeddings = o["max_position_embeddings"].Int(8192, 1, MaxPositions),
            BosTokenId = OptionalId("bos_token_id"),
            EosTokenId = OptionalId("eos_token_id"),
        };
        config.Validate(o.File, o.Path);
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
