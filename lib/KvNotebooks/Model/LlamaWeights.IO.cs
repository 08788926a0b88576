using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Validation;

namespace KvNotebooks.Model;

public sealed partial class LlamaWeights
{
    /// <summary>
    /// Loads a Hugging Face checkpoint folder: config.json plus model.safetensors, or the shards named by
    /// model.safetensors.index.json. The config and the tensors must agree exactly before any data is read:
    /// every tensor the config needs is there in its shape, and none is there that it does not use (rotary
    /// inv_freq buffers excepted; a tied lm_head only if it equals the embedding). Weights must be finite
    /// unless <see cref="NonFinite.Allow"/> is in effect. Every problem is an <see cref="InputException"/>.
    /// </summary>
    public static LlamaWeights Load(string dir)
    {
        InputFile.RequireFolder(dir, "model");
        var config = LlamaConfig.Load(Path.Combine(dir, "config.json"));
        var source = TensorSource.Open(dir);
        var c = config;
        var expected = ExpectedShapes(c);
        var missing = expected.Keys.Where(k => !source.Has(k)).ToList();
        if (missing.Count > 0)
            throw new InputException(Path.Combine(dir, "config.json"), "", $"the weights lack tensors this config needs: missing tensors: {string.Join(", ", missing.Take(12))}{(missing.Count > 12 ? $" and {missing.Count - 12} more" : "")}");
        bool tiedHead = c.TieWordEmbeddings && source.Has("lm_head.weight");
        var unexpected = source.Names.Where(n => !expected.ContainsKey(n) && !n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
                                                && !(tiedHead && n == "lm_head.weight")).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count > 0)
            throw new InputException(source.Find(unexpected[0]).File.Path, InputException.Join("header", unexpected[0]),
                $"the config does not use this tensor{(unexpected.Count > 1 ? $" (nor {unexpected.Count - 1} more: {string.Join(", ", unexpected.Skip(1).Take(4))})" : "")}; " +
                "does config.json match the weights (num_hidden_layers, attention_bias, tie_word_embeddings)?");
        foreach (var (name, want) in expected)
        {
            var (file, info) = source.Find(name);
            if (!info.Shape.SequenceEqual(want))
                throw new InputException(file.Path, InputException.Join("header", name), $"tensor has shape [{string.Join(", ", info.Shape)}], the config needs [{string.Join(", ", want)}]");
        }

        float[] T(string name)
        {
            var (file, _) = source.Find(name);
            var data = file.ReadFloat32(name);
            NonFinite.Check(data, file.Path, name);
            return data;
        }

        var embedding = T("model.embed_tokens.weight");
        var layers = new LayerWeights[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            layers[l] = new LayerWeights
            {
                InputNorm = T(p + "input_layernorm.weight"),
                Wq = T(p + "self_attn.q_proj.weight"), Wk = T(p + "self_attn.k_proj.weight"), Wv = T(p + "self_attn.v_proj.weight"),
                Bq = c.AttentionBias ? T(p + "self_attn.q_proj.bias") : null,
                Bk = c.AttentionBias ? T(p + "self_attn.k_proj.bias") : null,
                Bv = c.AttentionBias ? T(p + "self_attn.v_proj.bias") : null,
                Wo = T(p + "self_attn.o_proj.weight"),
                PostNorm = T(p + "post_attention_layernorm.weight"),
                WGate = T(p + "mlp.gate_proj.weight"), WUp = T(p + "mlp.up_proj.weight"), WDown = T(p + "mlp.down_proj.weight"),
            };
        }
        var finalNorm = T("model.norm.weight");
        if (tiedHead)
        {
            var (file, info) = source.Find("lm_head.weight");
            if (!info.Shape.SequenceEqual(expected["model.embed_tokens.weight"]) || !file.ReadFloat32("lm_head.weight").AsSpan().SequenceEqual(embedding))
                throw new InputException(file.Path, InputException.Join("header", "lm_head.weight"),
                    "tie_word_embeddings is true, but this lm_head differs from model.embed_tokens.weight (it would be ignored)");
        }
        var lmHead = c.TieWordEmbeddings ? embedding : T("lm_head.weight");
        return new LlamaWeights { Config = config, Embedding = embedding, Layers = layers, FinalNorm = finalNorm, LmHead = lmHead };
    }

    /// <summary>Every tensor the config calls for, with its Hugging Face name and shape.</summary>
    public static Dictionary<string, int[]> ExpectedShapes(LlamaConfig c)
    {
        int d = c.HiddenSize;
        var shapes = new Dictionary<string, int[]> { ["model.embed_tokens.weight"] = [c.VocabSize, d] };
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            shapes[p + "input_layernorm.weight"] = [d];
            shapes[p + "self_attn.q_proj.weight"] = [c.QDim, d];
            shapes[p + "self_attn.k_proj.weight"] = [c.KvDim, d];
            shapes[p + "self_attn.v_proj.weight"] = [c.KvDim, d];
            if (c.AttentionBias)
            {
                shapes[p + "self_attn.q_proj.bias"] = [c.QDim];
                shapes[p + "self_attn.k_proj.bias"] = [c.KvDim];
                shapes[p + "self_attn.v_proj.bias"] = [c.KvDim];
            }
            shapes[p + "self_attn.o_proj.weight"] = [d, c.QDim];
            shapes[p + "post_attention_layernorm.weight"] = [d];
            shapes[p + "mlp.gate_proj.weight"] = [c.IntermediateSize, d];
            shapes[p + "mlp.up_proj.weight"] = [c.IntermediateSize, d];
            shapes[p + "mlp.down_proj.weight"] = [d, c.IntermediateSize];
        }
        shapes["model.norm.weight"] = [d];
        if (!c.TieWordEmbeddings) shapes["lm_head.weight"] = [c.VocabSize, d];
        return shapes;
    }

    /// <summary>All tensors with their Hugging Face names (lm_head omitted when tied).</summary>
    public IEnumerable<(string Name, int[] Shape, float[] Data)> NamedTensors()
    {
        var shapes = ExpectedShapes(Config);
        yield return ("model.embed_tokens.weight", shapes["model.embed_tokens.weight"], Embedding);
        for (int l = 0; l < Layers.Length; l++)
        {
            string p = $"model.layers.{l}.";
            var lw = Layers[l];
            foreach (var (n, a) in new (string, float[]?)[]
            {
                ("input_layernorm.weight", lw.InputNorm), ("self_attn.q_proj.weight", lw.Wq), ("self_attn.k_proj.weight", lw.Wk),
                ("self_attn.v_proj.weight", lw.Wv), ("self_attn.q_proj.bias", lw.Bq), ("self_attn.k_proj.bias", lw.Bk),
                ("self_attn.v_proj.bias", lw.Bv), ("self_attn.o_proj.weight", lw.Wo), ("post_attention_layernorm.weight", lw.PostNorm),
                ("mlp.gate_proj.weight", lw.WGate), ("mlp.up_proj.weight", lw.WUp), ("mlp.down_proj.weight", lw.WDown),
            })
                if (a is not null && shapes.TryGetValue(p + n, out var shape)) yield return (p + n, shape, a);
        }
        yield return ("model.norm.weight", shapes["model.norm.weight"], FinalNorm);
        if (!Config.TieWordEmbeddings) yield return ("lm_head.weight", shapes["lm_head.weight"], LmHead);
    }

    /// <summary>Writes config.json and model.safetensors (each atomically) into <paramref name="dir"/>.</summary>
    public void Save(string dir, SafetensorsDtype dtype = SafetensorsDtype.F32)
    {
        Directory.CreateDirectory(dir);
        foreach (var (name, shape, data) in NamedTensors())
            if (data.Length != shape.Aggregate(1, (a, b) => a * b))
                throw new InvalidOperationException($"tensor '{name}' has {data.Length} values, shape [{string.Join(", ", shape)}] needs {shape.Aggregate(1, (a, b) => a * b)}");
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), NamedTensors(), dtype, new Dictionary<string, string> { ["format"] = "pt" });
        Config.Save(Path.Combine(dir, "config.json"));
    }

    /// <summary>
    /// Random weights, deterministic in <paramref name="seed"/>: normal(0, std) matrices (o_proj and
    /// down_proj scaled by 1/√(2·layers), as GPT-2 does for residual outputs), norms 1, biases normal(0, std).
    /// </summary>
    public static LlamaWeights Random(LlamaConfig config, int seed, float std = 0.02f)
    {
        config.Validate();
        var rng = new System.Random(seed);
        float[] N(int n, float s)
        {
            var a = new float[n];
            for (int i = 0; i < n; i += 2)
            {
                // Box–Muller: two normals from two uniforms in (0, 1].
                double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble(), r = Math.Sqrt(-2 * Math.Log(u1));
                a[i] = (float)(s * r * Math.Cos(2 * Math.PI * u2));
                if (i + 1 < n) a[i + 1] = (float)(s * r * Math.Sin(2 * Math.PI * u2));
            }
            return a;
        }
        float[] Ones(int n) => Enumerable.Repeat(1f, n).ToArray();
        var c = config;
        int d = c.HiddenSize;
        float resid = std / MathF.Sqrt(2 * c.NumLayers);
        var embedding = N(c.VocabSize * d, std);
        var layers = new LayerWeights[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
            layers[l] = new LayerWeights
            {
                InputNorm = Ones(d), Wq = N(c.QDim * d, std), Wk = N(c.KvDim * d, std), Wv = N(c.KvDim * d, std),
                Bq = c.AttentionBias ? N(c.QDim, std) : null, Bk = c.AttentionBias ? N(c.KvDim, std) : null, Bv = c.AttentionBias ? N(c.KvDim, std) : null,
                Wo = N(d * c.QDim, resid), PostNorm = Ones(d),
                WGate = N(c.IntermediateSize * d, std), WUp = N(c.IntermediateSize * d, std), WDown = N(d * c.IntermediateSize, resid),
            };
        return new LlamaWeights
        {
            Config = c, Embedding = embedding, Layers = layers, FinalNorm = Ones(d),
            LmHead = c.TieWordEmbeddings ? embedding : N(c.VocabSize * d, std),
        };
    }

    /// <summary>model.safetensors.index.json files larger than this are refused before reading.</summary>
    public const long MaxIndexBytes = 64 << 20;

    /// <summary>Resolves tensor names to the safetensors file holding them (one file or index shards).</summary>
    private sealed class TensorSource
    {
        private readonly Dictionary<string, SafetensorsFile> _byTensor = new();

        public static TensorSource Open(string dir)
        {
            var src = new TensorSource();
            string single = Path.Combine(dir, "model.safetensors"), index = Path.Combine(dir, "model.safetensors.index.json");
            if (File.Exists(single) || Directory.Exists(single))
            {
                var f = SafetensorsFile.Open(single);
                foreach (var name in f.Tensors.Keys) src._byTensor[name] = f;
                return src;
            }
            if (!File.Exists(index) && !Directory.Exists(index))
                throw new FileNotFoundException($"{dir}: neither model.safetensors nor model.safetensors.index.json is there", single);
            var bytes = InputFile.ReadAllBytes(index, "safetensors index", MaxIndexBytes);
            using var doc = StrictJson.Parse(bytes, index);
            var map = new JsonField(doc.RootElement, index)["weight_map"];
            var files = new Dictionary<string, SafetensorsFile>();
            foreach (var (tensor, fileNode) in map.Properties())
            {
                string fileName = fileNode.String();
                if (fileName.Length == 0 || fileName.Contains('/') || fileName.Contains('\\') || fileName.Contains("..") || fileName.Contains('\0'))
                    throw fileNode.Error($"shard name '{StrictJson.Printable(fileName)}' must be a plain file name in the model folder");
                if (!files.TryGetValue(fileName, out var f))
                {
                    string path = Path.Combine(dir, fileName);
                    if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"{index}: shard '{fileName}' (for tensor '{tensor}') does not exist", path);
                    files[fileName] = f = SafetensorsFile.Open(path);
                }
                if (!f.Tensors.ContainsKey(tensor)) throw fileNode.Error($"tensor '{StrictJson.Printable(tensor)}' is not in its shard '{fileName}'");
                src._byTensor[tensor] = f;
            }
            return src;
        }

        public bool Has(string name) => _byTensor.ContainsKey(name);
        public IEnumerable<string> Names => _byTensor.Keys;
        public (SafetensorsFile File, TensorInfo Info) Find(string name) => (_byTensor[name], _byTensor[name].Tensors[name]);
    }
}
