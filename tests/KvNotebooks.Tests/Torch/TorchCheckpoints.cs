using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace KvNotebooks.Tests.Torch;

/// <summary>The architecture variants a checkpoint of <see cref="TorchCheckpoints"/> can take.</summary>
public sealed record CheckpointVariant(
    string Dtype = "F32", bool Tie = false, bool Bias = false, bool Llama3Scaling = false, int KvHeads = 2, int Shards = 1,
    string ModelType = "llama");

/// <summary>
/// Writes tiny random Hugging Face-layout checkpoints with LibTorch and TorchSharp.PyBridge's safetensors writer
/// (not our writer): vocab 50, d 32, SwiGLU 64, 2 layers, 4 query heads of 8, K KV heads; F32, F16 or BF16
/// (torch's round-to-nearest-even casts); tied or not; q/k/v biases (Qwen2); the llama3 RoPE rule with
/// original_max_position_embeddings 16, so at head size 8 it keeps one frequency, smooths one and divides two;
/// one file or N shards with model.safetensors.index.json. config.json is written here as plain JSON.
/// </summary>
internal static class TorchCheckpoints
{
    public const int Vocab = 50, Hidden = 32, Inter = 64, Layers = 2, Heads = 4, HeadDim = 8;

    public static void Write(string dir, int seed, CheckpointVariant v)
    {
        KvNotebooks.Torch.TorchRuntime.Require();
        Directory.CreateDirectory(dir);
        bool bias = v.Bias || v.ModelType == "qwen2";
        var cfg = new Dictionary<string, object>
        {
            ["architectures"] = new[] { v.ModelType == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM" },
            ["model_type"] = v.ModelType, ["vocab_size"] = Vocab, ["hidden_size"] = Hidden, ["intermediate_size"] = Inter,
            ["num_hidden_layers"] = Layers, ["num_attention_heads"] = Heads, ["num_key_value_heads"] = v.KvHeads, ["head_dim"] = HeadDim,
            ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = v.Tie, ["max_position_embeddings"] = 8192,
            ["hidden_act"] = "silu", ["torch_dtype"] = v.Dtype switch { "F16" => "float16", "BF16" => "bfloat16", _ => "float32" },
        };
        if (v.ModelType == "llama") cfg["attention_bias"] = bias;
        if (v.Llama3Scaling)
            cfg["rope_scaling"] = new Dictionary<string, object>
            {
                ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
                ["original_max_position_embeddings"] = 16,
            };
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(cfg, new JsonSerializerOptions { WriteIndented = true }));

        var dtype = v.Dtype switch { "F16" => ScalarType.Float16, "BF16" => ScalarType.BFloat16, _ => ScalarType.Float32 };
        var gen = new Generator((ulong)seed);
        Tensor Normal(double std, params long[] shape) => (randn(shape, generator: gen) * std).to(dtype);
        Tensor Norm(long n) => (1 + randn([n], generator: gen) * 0.1).to(dtype);
        long q = Heads * HeadDim, kv = v.KvHeads * HeadDim;
        var tensors = new List<(string, Tensor)> { ("model.embed_tokens.weight", Normal(0.3, Vocab, Hidden)) };
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            tensors.Add((p + "input_layernorm.weight", Norm(Hidden)));
            tensors.Add((p + "self_attn.q_proj.weight", Normal(0.2, q, Hidden)));
            tensors.Add((p + "self_attn.k_proj.weight", Normal(0.2, kv, Hidden)));
            tensors.Add((p + "self_attn.v_proj.weight", Normal(0.2, kv, Hidden)));
            if (bias)
            {
                tensors.Add((p + "self_attn.q_proj.bias", Normal(0.1, q)));
                tensors.Add((p + "self_attn.k_proj.bias", Normal(0.1, kv)));
                tensors.Add((p + "self_attn.v_proj.bias", Normal(0.1, kv)));
            }
            tensors.Add((p + "self_attn.o_proj.weight", Normal(0.2, Hidden, q)));
            tensors.Add((p + "post_attention_layernorm.weight", Norm(Hidden)));
            tensors.Add((p + "mlp.gate_proj.weight", Normal(0.2, Inter, Hidden)));
            tensors.Add((p + "mlp.up_proj.weight", Normal(0.2, Inter, Hidden)));
            tensors.Add((p + "mlp.down_proj.weight", Normal(0.15, Hidden, Inter)));
        }
        tensors.Add(("model.norm.weight", Norm(Hidden)));
        if (!v.Tie) tensors.Add(("lm_head.weight", Normal(0.3, Vocab, Hidden)));

        if (v.Shards <= 1)
        {
            TorchSharp.PyBridge.Safetensors.SaveStateDict(Path.Combine(dir, "model.safetensors"), tensors.ToDictionary(t => t.Item1, t => t.Item2));
            return;
        }
        int per = (tensors.Count + v.Shards - 1) / v.Shards;
        var weightMap = new Dictionary<string, string>();
        for (int s = 0; s < v.Shards; s++)
        {
            string file = $"model-{s + 1:D5}-of-{v.Shards:D5}.safetensors";
            var part = tensors.Skip(s * per).Take(per).ToDictionary(t => t.Item1, t => t.Item2);
            TorchSharp.PyBridge.Safetensors.SaveStateDict(Path.Combine(dir, file), part);
            foreach (var name in part.Keys) weightMap[name] = file;
        }
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
            JsonSerializer.Serialize(new { metadata = new { }, weight_map = weightMap }, new JsonSerializerOptions { WriteIndented = true }));
    }
}
