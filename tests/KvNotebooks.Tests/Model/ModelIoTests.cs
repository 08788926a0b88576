using System.Buffers.Binary;
using System.Text;
using KvNotebooks.Model;
using KvNotebooks.Tests.Inference;

namespace KvNotebooks.Tests.Model;

public sealed class ModelIoTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-io").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private string WriteRaw(string name, string header, int dataBytes = 0, ulong? lengthOverride = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengthOverride ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData(SafetensorsDtype.F32)]
    [InlineData(SafetensorsDtype.F16)]
    [InlineData(SafetensorsDtype.BF16)]
    public void SafetensorsRoundTrip(SafetensorsDtype dtype)
    {
        var rng = new Random(1);
        var a = Enumerable.Range(0, 35).Select(_ => (float)(rng.NextDouble() * 10 - 5)).ToArray();
        var b = new float[] { 0f, -0f, 1f, 65504f, 1e-3f, float.PositiveInfinity, 3.14159f };
        string path = Path.Combine(_dir, "t.safetensors");
        Safetensors.Write(path, [("a", [5, 7], a), ("b", [7], b)], dtype, new Dictionary<string, string> { ["k"] = "v" });
        var f = SafetensorsFile.Open(path);
        Assert.Equal([5, 7], f.Tensors["a"].Shape);
        Assert.Equal("v", f.Metadata["k"]);
        Assert.Equal(0, (f.DataStart - 8) % 8);
        float Expect(float x) => dtype switch
        {
            SafetensorsDtype.F16 => (float)(Half)x,
            SafetensorsDtype.BF16 => Safetensors.FromBf16(Safetensors.ToBf16(x)),
            _ => x,
        };
        Assert.Equal(a.Select(Expect), f.ReadFloat32("a"));
        Assert.Equal(b.Select(Expect), f.ReadFloat32("b"));
    }

    [Fact]
    public void Bf16RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, Safetensors.ToBf16(1.0f));
        Assert.Equal(0x3F80, Safetensors.ToBf16(BitConverter.Int32BitsToSingle(0x3F808000))); // tie → even (down)
        Assert.Equal(0x3F82, Safetensors.ToBf16(BitConverter.Int32BitsToSingle(0x3F818000))); // tie → even (up)
        Assert.Equal(0x3F81, Safetensors.ToBf16(BitConverter.Int32BitsToSingle(0x3F808001))); // above half → up
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "outside")]                 // offsets past end
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "overlap")]
    [InlineData("{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, "I64")]                     // unknown dtype
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, "needs 12")]                 // size ≠ shape
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets")]
    [InlineData("[1,2]", 0, "not a JSON object")]
    [InlineData("{\"a\":", 0, "not valid JSON")]
    public void CorruptHeadersNameTheProblem(string header, int dataBytes, string problem)
    {
        string path = WriteRaw("bad.safetensors", header, dataBytes);
        var e = Assert.Throws<KvNotebooks.Validation.InputException>(() => SafetensorsFile.Open(path));
        Assert.Contains("bad.safetensors", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void LyingOrHugeHeaderLengthsFailFast()
    {
        var huge = Assert.Throws<KvNotebooks.Validation.InputException>(() => SafetensorsFile.Open(WriteRaw("huge.safetensors", "{}", 0, 1UL << 60)));
        Assert.Contains("limit", huge.Message);
        var lying = Assert.Throws<KvNotebooks.Validation.InputException>(() => SafetensorsFile.Open(WriteRaw("lie.safetensors", "{}", 0, 5000)));
        Assert.Contains("truncated", lying.Message);
        string tiny = Path.Combine(_dir, "tiny.safetensors");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("truncated", Assert.Throws<KvNotebooks.Validation.InputException>(() => SafetensorsFile.Open(tiny)).Message);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void WeightsSaveLoadRoundTrip(bool tied, bool bias)
    {
        var c = TinyModels.Config(bias, tied, llama3: true);
        var w = LlamaWeights.Random(c, seed: 5, std: 0.1f);
        w.Save(_dir);
        var back = LlamaWeights.Load(_dir);
        Assert.Equal(c, back.Config);
        foreach (var ((n1, s1, d1), (n2, s2, d2)) in w.NamedTensors().Zip(back.NamedTensors()))
        {
            Assert.Equal(n1, n2);
            Assert.Equal(s1, s2);
            Assert.Equal(d1, d2);
        }
        Assert.Equal(tied, ReferenceEquals(back.Embedding, back.LmHead));
    }

    [Fact]
    public void RandomIsDeterministicPerSeed()
    {
        var c = TinyModels.Config();
        Assert.Equal(LlamaWeights.Random(c, 7).Layers[1].Wq, LlamaWeights.Random(c, 7).Layers[1].Wq);
        Assert.NotEqual(LlamaWeights.Random(c, 7).Layers[1].Wq, LlamaWeights.Random(c, 8).Layers[1].Wq);
    }

    [Fact]
    public void ShapeMismatchAndMissingTensorsAreReported()
    {
        var c = TinyModels.Config();
        LlamaWeights.Random(c, 1).Save(_dir);
        (c with { IntermediateSize = 40 }).Save(Path.Combine(_dir, "config.json"));
        var e = Assert.Throws<KvNotebooks.Validation.InputException>(() => LlamaWeights.Load(_dir));
        Assert.Contains("mlp.gate_proj.weight", e.Message);
        Assert.Contains("[48, 32]", e.Message);
        Assert.Contains("[40, 32]", e.Message);

        (c with { NumLayers = 4 }).Save(Path.Combine(_dir, "config.json"));
        var missing = Assert.Throws<KvNotebooks.Validation.InputException>(() => LlamaWeights.Load(_dir));
        Assert.Contains("missing tensors", missing.Message);
        Assert.Contains("model.layers.2.input_layernorm.weight", missing.Message);
        Assert.Contains("and 6 more", missing.Message); // 2 layers × 9 tensors, the first 12 named
        Assert.Throws<DirectoryNotFoundException>(() => LlamaWeights.Load(Path.Combine(_dir, "nope")));
    }

    [Fact]
    public void ConfigKeysAndDefaults()
    {
        var c = LlamaConfig.FromJson("""
            {"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":10,"hidden_size":16,"intermediate_size":8,
             "num_hidden_layers":1,"num_attention_heads":4,"eos_token_id":[7,8],"rope_scaling":null}
            """, "cfg");
        Assert.True(c.AttentionBias);
        Assert.Equal(4, c.NumKvHeads);
        Assert.Equal(4, c.HeadDim);
        Assert.Equal(7, c.EosTokenId);
        var l3 = LlamaConfig.FromJson("""
            {"vocab_size":10,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,
             "head_dim":4,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}
            """, "cfg");
        Assert.Equal(new RopeScaling("llama3", 8, 1, 4, 8192), l3.RopeScaling);
        Assert.Equal(l3, LlamaConfig.FromJson(l3.ToJson(), "again"));
        Assert.Contains("'yarn' is not supported", Assert.Throws<KvNotebooks.Validation.InputException>(() => LlamaConfig.FromJson(
            """{"vocab_size":10,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"rope_scaling":{"type":"yarn","factor":2}}""", "cfg")).Message);
        Assert.Contains("missing required key 'vocab_size'", Assert.Throws<KvNotebooks.Validation.InputException>(() => LlamaConfig.FromJson(
            """{"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2}""", "cfg")).Message);
        Assert.Contains("multiple of num_key_value_heads", Assert.Throws<KvNotebooks.Validation.InputException>(() => LlamaConfig.FromJson(
            """{"vocab_size":10,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3}""", "cfg")).Message);
        Assert.Contains("GPT2LMHeadModel", Assert.Throws<KvNotebooks.Validation.InputException>(() => LlamaConfig.FromJson(
            """{"architectures":["GPT2LMHeadModel"],"vocab_size":10,"hidden_size":16,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":4}""", "cfg")).Message);
    }
}
