using System.Collections.Concurrent;
using System.Text.Json;
using KvNotebooks.Model;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace KvNotebooks.Torch;

/// <summary>Which keys each query head of one layer sees: a bool tensor [heads or 1, T, T], true = attends.</summary>
public delegate Tensor AttentionVisibility(int layer);

/// <summary>Options of <see cref="TorchLlama.Logits"/>, the reference forward.</summary>
public sealed record TorchForwardOptions
{
    /// <summary>Visibility per layer (default: causal).</summary>
    public AttentionVisibility? Visible { get; init; }
    /// <summary>DuoAttention/PruLong hybrid heads: per layer a tensor [KV heads] of z; every query head of a group
    /// outputs z·(full causal attention) + (1 − z)·(attention under <see cref="GatedStreaming"/>).</summary>
    public Tensor[]? Gates { get; init; }
    /// <summary>The streaming side of gated heads, [1, T, T].</summary>
    public Tensor? GatedStreaming { get; init; }
    /// <summary>Sees each layer's post-RoPE queries [heads × T × headDim] and keys [KV heads × T × headDim].</summary>
    public Action<int, Tensor, Tensor>? OnQueriesKeys { get; init; }
    /// <summary>Query rows per attention block (bounds the T × T scores in memory; each row's result is unchanged).</summary>
    public int QueryBlock { get; init; } = 512;
}

/// <summary>
/// A Llama (Hugging Face LlamaForCausalLM / Qwen2ForCausalLM layout: GQA, rotate-half RoPE with the llama3
/// rescaling, optional q/k/v biases, tied or separate LM head) written with LibTorch ops from transformers'
/// modeling code, not from our engine: the independent reference the tests hold the engine and the trainer to,
/// and the benchmark peer. Parameters carry Hugging Face names (<see cref="Parameters"/>); checkpoints are read
/// by TorchSharp.PyBridge's safetensors reader, not ours. Computes in <see cref="Dtype"/> (float32 as Hugging
/// Face runs it, or float64 for an exact reference); RoPE's angles are fp32 either way, as Hugging Face makes them.
/// <para>Lifetimes: TorchSharp frees a tensor's or a scalar's native object from the .NET finalizer, and its operators
/// create temporaries (the <c>Scalar</c> 1 of <c>a + b</c>, the <c>Scalar</c> of <c>x * 0.5</c>) that nothing references
/// while LibTorch still reads them. A garbage collection during the op then frees them under it: logits came out NaN
/// (and <c>add</c> failed reading a freed scalar) under the test suite's parallel load. So every entry point runs in a
/// dispose scope (its tensors stay referenced, then are freed here, on this thread), every scalar is one of
/// <see cref="S"/>'s, which live as long as the process, and positions are built from arrays, not <c>arange</c>'s scalars.</para>
/// </summary>
public sealed class TorchLlama : IDisposable
{
    private readonly Dictionary<string, Tensor> _p;
    private readonly Tensor _invFreq;

    private TorchLlama(LlamaConfig config, Dictionary<string, Tensor> parameters, ScalarType dtype)
    {
        TorchRuntime.Require();
        if (dtype is not (ScalarType.Float32 or ScalarType.Float64)) throw new ArgumentException($"dtype {dtype}: float32 or float64");
        config.Validate();
        Config = config;
        Dtype = dtype;
        _p = parameters;
        _invFreq = InverseFrequencies(config);
    }

    public LlamaConfig Config { get; }
    public ScalarType Dtype { get; }
    /// <summary>Every parameter once, by Hugging Face name (tied embeddings: no <c>lm_head.weight</c>).</summary>
    public IReadOnlyDictionary<string, Tensor> Parameters => _p;
    /// <summary>The rotary frequencies as transformers computes them (fp32).</summary>
    public Tensor InvFreq => _invFreq;

    /// <summary>Reads a Hugging Face folder: config.json and model.safetensors, or the shards named by
    /// model.safetensors.index.json (read with TorchSharp.PyBridge), converted to <paramref name="dtype"/>.</summary>
    public static TorchLlama Load(string dir, ScalarType dtype = ScalarType.Float32)
    {
        TorchRuntime.Require();
        var config = LlamaConfig.Load(Path.Combine(dir, "config.json"));
        var files = new List<string>();
        string index = Path.Combine(dir, "model.safetensors.index.json");
        if (File.Exists(index))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            files.AddRange(doc.RootElement.GetProperty("weight_map").EnumerateObject().Select(e => e.Value.GetString()!).Distinct());
        }
        else files.Add("model.safetensors");
        var p = new Dictionary<string, Tensor>();
        foreach (var f in files)
            foreach (var (name, t) in TorchSharp.PyBridge.Safetensors.LoadStateDict(Path.Combine(dir, f)))
            {
                p[name] = t.to(dtype).detach();
                t.Dispose();
            }
        if (config.TieWordEmbeddings) p.Remove("lm_head.weight");
        foreach (var name in ParameterNames(config))
            if (!p.ContainsKey(name)) throw new InvalidDataException($"{dir}: tensor '{name}' missing");
        return new TorchLlama(config, p, dtype);
    }

    /// <summary>The same weights as <paramref name="w"/> (copied), in <paramref name="dtype"/>.</summary>
    public static TorchLlama FromWeights(LlamaWeights w, ScalarType dtype = ScalarType.Float32)
    {
        TorchRuntime.Require();
        var p = new Dictionary<string, Tensor>();
        foreach (var (name, shape, data) in w.NamedTensors())
            p[name] = tensor(data, shape.Select(s => (long)s).ToArray()).to(dtype).detach();
        if (w.Config.TieWordEmbeddings || ReferenceEquals(w.LmHead, w.Embedding)) p.Remove("lm_head.weight");
        return new TorchLlama(w.Config with { TieWordEmbeddings = !p.ContainsKey("lm_head.weight") }, p, dtype);
    }

    /// <summary>Hugging Face names of every parameter of <paramref name="c"/>.</summary>
    public static IEnumerable<string> ParameterNames(LlamaConfig c)
    {
        yield return "model.embed_tokens.weight";
        for (int l = 0; l < c.NumLayers; l++)
        {
            string pre = $"model.layers.{l}.";
            yield return pre + "input_layernorm.weight";
            foreach (var x in new[] { "q", "k", "v" })
            {
                yield return pre + $"self_attn.{x}_proj.weight";
                if (c.AttentionBias) yield return pre + $"self_attn.{x}_proj.bias";
            }
            yield return pre + "self_attn.o_proj.weight";
            yield return pre + "post_attention_layernorm.weight";
            foreach (var x in new[] { "gate", "up", "down" }) yield return pre + $"mlp.{x}_proj.weight";
        }
        yield return "model.norm.weight";
        if (!c.TieWordEmbeddings) yield return "lm_head.weight";
    }

    /// <summary>Marks every parameter as requiring a gradient (and clears old ones): for autograd checks and training.</summary>
    public void RequireGradients()
    {
        foreach (var t in _p.Values)
        {
            t.requires_grad_(true);
            t.grad?.zero_();
        }
    }

    /// <summary>transformers' <c>_compute_default_rope_parameters</c> and <c>_compute_llama3_parameters</c>, op for op in
    /// fp32: inv_freq = 1 / θ^(arange(0, d, 2) / d), then the llama3 band rule.</summary>
    public static Tensor InverseFrequencies(LlamaConfig c)
    {
        using var scope = NewDisposeScope();
        int d = c.HeadDim;
        var exponent = Positions(0, d / 2).mul(S(2)).to(ScalarType.Float32).div(S(d));   // arange(0, d, 2) / d
        var invFreq = full_like(exponent, S(c.RopeTheta)).pow(exponent).reciprocal();
        if (c.RopeScaling is { } s)
        {
            double lowFreqWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
            double highFreqWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
            var wavelen = invFreq.reciprocal().mul(S(2 * Math.PI));
            var llama = where(wavelen.gt(S(lowFreqWavelen)), invFreq.div(S(s.Factor)), invFreq);
            var smooth = wavelen.reciprocal().mul(S(s.OriginalMaxPositionEmbeddings)).sub(S(s.LowFreqFactor)).div(S(s.HighFreqFactor - s.LowFreqFactor));
            var smoothed = Add(ones_like(smooth).sub(smooth).mul(llama).div(S(s.Factor)), smooth.mul(llama));   // (1 − smooth)·llama/factor + smooth·llama
            var medium = wavelen.lt(S(highFreqWavelen)).logical_not().logical_and(wavelen.gt(S(lowFreqWavelen)).logical_not());
            invFreq = where(medium, smoothed, llama);
        }
        return invFreq.MoveToOuterDisposeScope();
    }

    /// <summary>cos and sin [T × headDim] of position·inv_freq (fp32, as <c>LlamaRotaryEmbedding</c>), in <see cref="Dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) RotaryTables(Tensor positions)
    {
        using var scope = NewDisposeScope();
        var freqs = _invFreq.unsqueeze(1).matmul(positions.to(ScalarType.Float32).unsqueeze(0)).t();   // [T × d/2]
        var emb = cat([freqs, freqs], -1);
        return (emb.cos().to(Dtype).MoveToOuterDisposeScope(), emb.sin().to(Dtype).MoveToOuterDisposeScope());
    }

    private Tensor P(string name) => _p[name];

    private static readonly ConcurrentDictionary<double, Scalar> Constants = new();
    /// <summary>The scalar <paramref name="value"/>, created once and kept for the life of the process, so that no
    /// finalizer can free it while LibTorch reads it (see the class remarks).</summary>
    private static Scalar S(double value) => Constants.GetOrAdd(value, v => v.ToScalar());
    /// <summary>a + b with a scalar that stays alive (TorchSharp's <c>+</c> makes a temporary 1).</summary>
    private static Tensor Add(Tensor a, Tensor b) => a.add(b, S(1));
    /// <summary>The positions start … start + count − 1 as an int64 tensor, from an array (arange's arguments are temporary scalars).</summary>
    private static Tensor Positions(long start, long count)
    {
        var p = new long[count];
        for (long i = 0; i < count; i++) p[i] = start + i;
        return tensor(p);
    }

    private Tensor RmsNorm(Tensor x, string weight)
    {
        var h = x;   // transformers upcasts to fp32; Dtype is fp32 or fp64 already
        var variance = h.pow(S(2)).mean([-1], keepdim: true);
        h = h.mul(rsqrt(variance.add(S(Config.RmsNormEps), S(1))));
        return P(weight).mul(h.to(Dtype));
    }

    private Tensor Linear(Tensor x, string prefix, bool bias = false) =>
        F.linear(x, P(prefix + ".weight"), bias && Config.AttentionBias ? P(prefix + ".bias") : null);

    private static Tensor RotateHalf(Tensor x)
    {
        long half = x.shape[^1] / 2;
        return cat([x[TensorIndex.Ellipsis, TensorIndex.Slice(half)].neg(), x[TensorIndex.Ellipsis, TensorIndex.Slice(0, half)]], -1);
    }

    /// <summary>The decoder's layers on hidden states x [T × d] at positions [T]; attention(layer, q, k, v) gets
    /// q [heads × T × hd] and k, v [KV heads × T × hd] after RoPE and returns [heads × T × hd].</summary>
    private Tensor Layers(Tensor x, Tensor positions, Func<int, Tensor, Tensor, Tensor, Tensor> attention)
    {
        var c = Config;
        long T = x.shape[0];
        var (cos, sin) = RotaryTables(positions);
        for (int l = 0; l < c.NumLayers; l++)
        {
            string pre = $"model.layers.{l}.";
            var h = RmsNorm(x, pre + "input_layernorm.weight");
            var q = Linear(h, pre + "self_attn.q_proj", bias: true).view(T, c.NumHeads, c.HeadDim).transpose(0, 1);
            var k = Linear(h, pre + "self_attn.k_proj", bias: true).view(T, c.NumKvHeads, c.HeadDim).transpose(0, 1);
            var v = Linear(h, pre + "self_attn.v_proj", bias: true).view(T, c.NumKvHeads, c.HeadDim).transpose(0, 1);
            q = Add(q.mul(cos), RotateHalf(q).mul(sin));
            k = Add(k.mul(cos), RotateHalf(k).mul(sin));
            var att = attention(l, q, k, v).transpose(0, 1).reshape(T, c.QDim);
            x = Add(x, Linear(att, pre + "self_attn.o_proj"));
            h = RmsNorm(x, pre + "post_attention_layernorm.weight");
            x = Add(x, Linear(F.silu(Linear(h, pre + "mlp.gate_proj")).mul(Linear(h, pre + "mlp.up_proj")), pre + "mlp.down_proj"));
        }
        return RmsNorm(x, "model.norm.weight");
    }

    private Tensor Head(Tensor hidden) => F.linear(hidden, _p.TryGetValue("lm_head.weight", out var w) ? w : P("model.embed_tokens.weight"));

    /// <summary>Causal <c>scaled_dot_product_attention</c> of q [heads × T × hd] over k, v [KV heads × T × hd] (GQA by repeat_kv).</summary>
    private Tensor Sdpa(Tensor q, Tensor k, Tensor v) =>
        F.scaled_dot_product_attention(q.unsqueeze(0), RepeatKv(k).unsqueeze(0), RepeatKv(v).unsqueeze(0), null, 0, true).squeeze(0);

    /// <summary>transformers' <c>repeat_kv</c>: KV head g serves query heads g·G … g·G + G − 1.</summary>
    private Tensor RepeatKv(Tensor kv) => Config.GroupSize == 1 ? kv : kv.repeat_interleave(Config.GroupSize, 0);

    /// <summary>Logits [T × V] (in <see cref="Dtype"/>) at every position of <paramref name="tokens"/> (positions 0 … T−1).
    /// Causal attention runs as transformers' default (sdpa) path, <c>scaled_dot_product_attention</c>; with a visibility
    /// rule or gates, as its eager path: softmax(q·kᵀ/√hd, masked) · v, in blocks of query rows.
    /// Autograd records it when parameters (or gates) require gradients.</summary>
    public Tensor Logits(ReadOnlySpan<int> tokens, TorchForwardOptions? options = null)
    {
        using var scope = NewDisposeScope();
        var o = options ?? new TorchForwardOptions();
        var c = Config;
        int T = tokens.Length;
        var ids = tensor(tokens.ToArray().Select(t => (long)t).ToArray());
        var x = P("model.embed_tokens.weight").index_select(0, ids);
        var positions = Positions(0, T);
        double scale = 1 / Math.Sqrt(c.HeadDim);
        Tensor Eager(Tensor q, Tensor k, Tensor v, Func<long, long, Tensor> visible)
        {
            var kr = RepeatKv(k).transpose(1, 2); var vr = RepeatKv(v);
            var blocks = new List<Tensor>();
            for (long q0 = 0; q0 < T; q0 += o.QueryBlock)
            {
                long q1 = Math.Min(T, q0 + o.QueryBlock);
                var s = q[.., (int)q0..(int)q1].matmul(kr).mul(S(scale));                  // [heads × rows × T]
                s = s.masked_fill(visible(q0, q1).logical_not(), S(double.NegativeInfinity));
                var p = Dtype == ScalarType.Float32 ? F.softmax(s, -1, ScalarType.Float32).to(Dtype) : F.softmax(s, -1);
                blocks.Add(p.matmul(vr));
            }
            return cat(blocks, 1);
        }
        Tensor Causal(long q0, long q1) => Positions(0, T).unsqueeze(0).le(Positions(q0, q1 - q0).unsqueeze(1));
        Tensor Rows(Tensor mask, long q0, long q1) => mask[.., (int)q0..(int)q1];
        var hidden = Layers(x, positions, (l, q, k, v) =>
        {
            o.OnQueriesKeys?.Invoke(l, q, k);
            if (o.Gates is null)
            {
                if (o.Visible is null) return Sdpa(q, k, v);
                var mask = o.Visible(l);
                return Eager(q, k, v, (a, b) => Rows(mask, a, b));
            }
            var streaming = o.GatedStreaming ?? throw new ArgumentException("gates need GatedStreaming");
            var z = RepeatKv(o.Gates[l].to(Dtype)).view(c.NumHeads, 1, 1);
            return Add(z.mul(Eager(q, k, v, Causal)), ones_like(z).sub(z).mul(Eager(q, k, v, (a, b) => Rows(streaming, a, b))));
        });
        return Head(hidden).MoveToOuterDisposeScope();
    }

    /// <summary>The KV cache of the inference path: keys and values [1 × KV heads × capacity × hd] per layer.</summary>
    public sealed class Cache : IDisposable
    {
        internal readonly Tensor[] K, V;
        public Cache(LlamaConfig c, int capacity, ScalarType dtype)
        {
            K = Enumerable.Range(0, c.NumLayers).Select(_ => zeros(1, c.NumKvHeads, capacity, c.HeadDim, dtype: dtype)).ToArray();
            V = Enumerable.Range(0, c.NumLayers).Select(_ => zeros(1, c.NumKvHeads, capacity, c.HeadDim, dtype: dtype)).ToArray();
        }
        /// <summary>Tokens held.</summary>
        public int Length { get; internal set; }
        public void Dispose() { foreach (var t in K.Concat(V)) t.Dispose(); }
    }

    /// <summary>Inference as transformers' generate runs it (no autograd, attention by
    /// <c>scaled_dot_product_attention</c>): appends <paramref name="tokens"/> to <paramref name="cache"/> and returns
    /// the logits [1 × V] of the last one. A first call pre-fills (causal), later calls of one token decode.</summary>
    public Tensor Step(ReadOnlySpan<int> tokens, Cache cache)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var c = Config;
        int T = tokens.Length, start = cache.Length;
        if (start > 0 && T != 1) throw new ArgumentException("after the pre-fill, one token per step");
        var ids = tensor(tokens.ToArray().Select(t => (long)t).ToArray());
        var x = P("model.embed_tokens.weight").index_select(0, ids);
        var hidden = Layers(x, Positions(start, T), (l, q, k, v) =>
        {
            cache.K[l][.., .., start..(start + T)] = k.unsqueeze(0);
            cache.V[l][.., .., start..(start + T)] = v.unsqueeze(0);
            var ks = cache.K[l][.., .., ..(start + T)];
            var vs = cache.V[l][.., .., ..(start + T)];
            if (c.GroupSize > 1) { ks = ks.repeat_interleave(c.GroupSize, 1); vs = vs.repeat_interleave(c.GroupSize, 1); }
            return F.scaled_dot_product_attention(q.unsqueeze(0), ks, vs, null, 0, T > 1).squeeze(0);
        });
        cache.Length = start + T;
        return Head(hidden[^1..]).MoveToOuterDisposeScope();
    }

    /// <summary>Mean cross-entropy of next-token prediction over all positions (targets [T]) with attention by
    /// <c>scaled_dot_product_attention</c> (causal), recorded by autograd: the training benchmark's step.</summary>
    public Tensor TrainingLoss(ReadOnlySpan<int> tokens, ReadOnlySpan<int> targets)
    {
        using var scope = NewDisposeScope();
        int T = tokens.Length;
        var ids = tensor(tokens.ToArray().Select(t => (long)t).ToArray());
        var x = P("model.embed_tokens.weight").index_select(0, ids);
        var hidden = Layers(x, Positions(0, T), (l, q, k, v) => Sdpa(q, k, v));
        return F.cross_entropy(Head(hidden), tensor(targets.ToArray().Select(t => (long)t).ToArray())).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in _p.Values) t.Dispose();
        _invFreq.Dispose();
    }
}
