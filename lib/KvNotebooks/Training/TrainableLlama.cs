using KvNotebooks.Bench;
using KvNotebooks.Model;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Training;

/// <summary>
/// Forward and backward of a whole Llama model on one sequence (or a batch of equal-length sequences
/// laid back to back, so every Linear is one GEMM over all rows), built from the ops in Training/Ops
/// (llm.c style: explicit activations, explicit backward in reverse order).
/// The loss is the mean cross-entropy at chosen positions only: position lossPositions[p] must
/// predict targets[p]; logits are computed only at those rows.
/// Gradients accumulate (+=) into <see cref="Parameters"/>' Grad buffers (mirrored as <see cref="Grads"/>)
/// across calls until <see cref="ZeroGrad"/>; frozen parameters get no gradient. Tied embeddings
/// share one parameter. Attention heads can be full, streaming (<see cref="Visibility"/>), or
/// DuoAttention/PruLong hybrids z·full + (1 − z)·streaming (<see cref="EnableGates"/>, dL/dz in
/// <see cref="GateGrads"/>). Activation buffers are allocated for the most rows seen and reused.
/// The fast path that runs the last layer on the loss rows only lives in TrainableLlama.LossRows.cs.
/// </summary>
public sealed partial class TrainableLlama
{
    private readonly Dictionary<float[], Parameter> _byArray = new(ReferenceEqualityComparer.Instance);
    private readonly KeyVisibility[] _fullMasks;
    private KeyVisibility[] _streamMasks;
    private Activations? _a;
    private RopeTable? _rope;
    private int _ropeSeqLen;
    private int _N, _P, _P2, _seqLen, _batch;
    private int[] _tokens = [], _positions = [], _targets = [];

    /// <param name="weights">The weights trained in place (gradients go to <see cref="Grads"/>).</param>
    /// <param name="compute">Threads and kernel paths the passes run with (default: every core).</param>
    public TrainableLlama(LlamaWeights weights, ComputeContext? compute = null)
    {
        Compute = compute ?? new ComputeContext();
        Config = weights.Config;
        Config.Validate();
        Weights = weights;
        var c = Config;
        var ps = new List<Parameter>();
        Parameter Add(string name, float[] value, ParamKind kind)
        {
            var p = new Parameter(name, value, kind);
            ps.Add(p);
            _byArray[value] = p;
            return p;
        }
        float[] G(float[]? value) => value is null ? null! : _byArray[value].Grad;

        Add("model.embed_tokens.weight", weights.Embedding, ParamKind.Embedding);
        var gl = new LayerWeights[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            var w = weights.Layers[l];
            string pre = $"model.layers.{l}.";
            Add(pre + "input_layernorm.weight", w.InputNorm, ParamKind.Norm);
            Add(pre + "self_attn.q_proj.weight", w.Wq, ParamKind.Weight);
            Add(pre + "self_attn.k_proj.weight", w.Wk, ParamKind.Weight);
            Add(pre + "self_attn.v_proj.weight", w.Wv, ParamKind.Weight);
            if (w.Bq is not null) Add(pre + "self_attn.q_proj.bias", w.Bq, ParamKind.Bias);
            if (w.Bk is not null) Add(pre + "self_attn.k_proj.bias", w.Bk, ParamKind.Bias);
            if (w.Bv is not null) Add(pre + "self_attn.v_proj.bias", w.Bv, ParamKind.Bias);
            Add(pre + "self_attn.o_proj.weight", w.Wo, ParamKind.Weight);
            Add(pre + "post_attention_layernorm.weight", w.PostNorm, ParamKind.Norm);
            Add(pre + "mlp.gate_proj.weight", w.WGate, ParamKind.Weight);
            Add(pre + "mlp.up_proj.weight", w.WUp, ParamKind.Weight);
            Add(pre + "mlp.down_proj.weight", w.WDown, ParamKind.Weight);
            gl[l] = new LayerWeights
            {
                InputNorm = G(w.InputNorm), Wq = G(w.Wq), Wk = G(w.Wk), Wv = G(w.Wv),
                Bq = w.Bq is null ? null : G(w.Bq), Bk = w.Bk is null ? null : G(w.Bk), Bv = w.Bv is null ? null : G(w.Bv),
                Wo = G(w.Wo), PostNorm = G(w.PostNorm), WGate = G(w.WGate), WUp = G(w.WUp), WDown = G(w.WDown),
            };
        }
        Add("model.norm.weight", weights.FinalNorm, ParamKind.Norm);
        if (!ReferenceEquals(weights.LmHead, weights.Embedding)) Add("lm_head.weight", weights.LmHead, ParamKind.Weight);
        Parameters = ps;
        Grads = new LlamaWeights
        {
            Config = c, Embedding = G(weights.Embedding), Layers = gl, FinalNorm = G(weights.FinalNorm), LmHead = G(weights.LmHead),
        };

        _fullMasks = Enumerable.Repeat(KeyVisibility.Full, c.NumHeads).ToArray();
        _streamMasks = _fullMasks;
        Visibility = Enumerable.Range(0, c.NumLayers).Select(_ => (KeyVisibility[])_fullMasks.Clone()).ToArray();
    }

    public LlamaConfig Config { get; }
    public LlamaWeights Weights { get; }
    /// <summary>What every forward and backward pass runs with.</summary>
    public ComputeContext Compute { get; }
    /// <summary>Gradient buffers shaped like <see cref="Weights"/> (the same arrays as Parameters[i].Grad).</summary>
    public LlamaWeights Grads { get; }
    /// <summary>Every parameter tensor once, with Hugging Face names (tied: no lm_head entry).</summary>
    public IReadOnlyList<Parameter> Parameters { get; }
    /// <summary>[layer][query head]: the mask of each head when gates are off (default all Full).</summary>
    public KeyVisibility[][] Visibility { get; }
    /// <summary>[layer][KV head] z ∈ [0,1] when gates are on, else null.</summary>
    public float[][]? Gates { get; private set; }
    /// <summary>[layer][KV head] dL/dz, accumulated like parameter gradients.</summary>
    public float[][]? GateGrads { get; private set; }
    /// <summary>Whether <see cref="GateGrads"/> is computed.</summary>
    public bool GatesTrainable { get; set; } = true;
    /// <summary>Attention through <see cref="BlockedAttentionOp"/> (GEMM blocks, default) or the
    /// row-by-row reference <see cref="AttentionOp"/>; both give the same results.</summary>
    public bool UseBlockedAttention { get; set; } = true;
    /// <summary>Loss of the last <see cref="Forward"/>.</summary>
    public double Loss { get; private set; }
    /// <summary>[P × V] logits at the loss positions of the last forward.</summary>
    public ReadOnlySpan<float> Logits => _a is null ? default : _a.Logits.AsSpan(0, _P * Config.VocabSize);

    public Parameter this[string name] => Parameters.First(p => p.Name == name);

    /// <summary>Layer <paramref name="layer"/>'s queries [rows × QDim] and keys [rows × KvDim] after RoPE, and its values
    /// [rows × KvDim], from the last forward: what an inference cache holds (Locret's retaining heads train on them).</summary>
    public ReadOnlySpan<float> LayerQueries(int layer) => LayerActivations(layer).Q.AsSpan(0, _N * Config.QDim);
    /// <inheritdoc cref="LayerQueries"/>
    public ReadOnlySpan<float> LayerKeys(int layer) => LayerActivations(layer).K.AsSpan(0, _N * Config.KvDim);
    /// <inheritdoc cref="LayerQueries"/>
    public ReadOnlySpan<float> LayerValues(int layer) => LayerActivations(layer).V.AsSpan(0, _N * Config.KvDim);

    private LayerActs LayerActivations(int layer) =>
        _a is null ? throw new InvalidOperationException("no forward has run yet")
        : (uint)layer < (uint)Config.NumLayers ? _a.L[layer] : throw new ArgumentOutOfRangeException(nameof(layer), layer, $"the model has {Config.NumLayers} layers");

    /// <summary>When set, each op's time is charged to it (kvnb bench train --breakdown).</summary>
    internal StepTimer? Timer { get; set; }

    /// <summary>Turns every layer's attention into z·full + (1 − z)·streaming per KV head
    /// (every query head of a group shares z), z initialised to <paramref name="z0"/>.</summary>
    public void EnableGates(KeyVisibility streaming, float z0 = 1f)
    {
        var c = Config;
        _streamMasks = Enumerable.Repeat(streaming, c.NumHeads).ToArray();
        Gates = Enumerable.Range(0, c.NumLayers).Select(_ => Enumerable.Repeat(z0, c.NumKvHeads).ToArray()).ToArray();
        GateGrads = Enumerable.Range(0, c.NumLayers).Select(_ => new float[c.NumKvHeads]).ToArray();
    }

    public void DisableGates() { Gates = null; GateGrads = null; }

    /// <summary>Sets Frozen on every parameter whose name matches.</summary>
    public void SetFrozen(Func<string, bool> nameMatches, bool frozen)
    {
        foreach (var p in Parameters) if (nameMatches(p.Name)) p.Frozen = frozen;
    }

    public void ZeroGrad()
    {
        foreach (var p in Parameters) Array.Clear(p.Grad);
        if (GateGrads is not null) foreach (var g in GateGrads) Array.Clear(g);
    }

    /// <summary>Forward then backward; returns the loss. Gradients are scaled by <paramref name="lossScale"/>
    /// (e.g. 1/B to average over a batch of sequences).</summary>
    public double ForwardBackward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lossPositions, ReadOnlySpan<int> targets, float lossScale = 1f, int batch = 1)
    {
        double loss = Forward(tokens, lossPositions, targets, batch);
        Backward(lossScale);
        return loss;
    }

    /// <summary>tokens [B·T]: <paramref name="batch"/> sequences of T tokens back to back, each at positions
    /// 0…T−1 and attending only within itself. Returns the mean CE of targets[p] at row lossPositions[p]
    /// (rows index the concatenation, so the mean is over all the batch's loss positions).</summary>
    public double Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> lossPositions, ReadOnlySpan<int> targets, int batch = 1)
    {
        using var scope = Compute.Enter();
        var c = Config;
        int T = tokens.Length, P = lossPositions.Length;
        if (T == 0) throw new ArgumentException("empty sequence");
        if (targets.Length != P) throw new ArgumentException($"{P} loss positions but {targets.Length} targets");
        if (P > T) throw new ArgumentException($"{P} loss positions for {T} tokens");
        foreach (int t in targets) if ((uint)t >= (uint)c.VocabSize) throw new ArgumentOutOfRangeException(nameof(targets), t, "target outside the vocabulary");
        foreach (int p in lossPositions) if ((uint)p >= (uint)T) throw new ArgumentOutOfRangeException(nameof(lossPositions), p, "position outside the sequence");
        int d = c.HiddenSize, V = c.VocabSize;
        if (UseSparse(lossPositions, T, batch))
        {
            Prepare(tokens, batch);
            _P = P; _P2 = PackedRows(P); _sparse = true;
            lossPositions.CopyTo(_positions); targets.CopyTo(_targets);
            MarkActiveRows(lossPositions);
            RunLayers(sparseLast: true);
        }
        else
        {
            ForwardHidden(tokens, batch);
            _P = P;
            lossPositions.CopyTo(_positions); targets.CopyTo(_targets);
            for (int p = 0; p < P; p++) _a!.Xf.AsSpan(lossPositions[p] * d, d).CopyTo(_a.XfRows.AsSpan(p * d, d));
        }
        var a = _a!;
        LinearOp.Forward(a.XfRows, Weights.LmHead, default, a.Logits, P, d, V);
        Loss = CrossEntropyOp.Forward(a.Logits, targets, a.Probs, P, V);
        Timer?.Mark("head + loss");
        return Loss;
    }

    /// <summary>Runs the layers and the final norm on tokens [T] (positions 0…T−1) and returns the final
    /// hidden states [T × d] (after the final RMSNorm, what the LM head reads; DuoAttention's distillation
    /// target). Backward from them with <see cref="BackwardFromHidden"/>.</summary>
    public ReadOnlySpan<float> ForwardHidden(ReadOnlySpan<int> tokens, int batch = 1)
    {
        using var scope = Compute.Enter();
        Prepare(tokens, batch);
        RunLayers(sparseLast: false);
        return _a!.Xf.AsSpan(0, _N * Config.HiddenSize);
    }

    private void Prepare(ReadOnlySpan<int> tokens, int batch)
    {
        var c = Config;
        int N = tokens.Length;
        if (N == 0) throw new ArgumentException("empty sequence");
        if (batch < 1 || N % batch != 0) throw new ArgumentException($"{N} tokens do not split into {batch} sequences of equal length");
        foreach (int t in tokens) if ((uint)t >= (uint)c.VocabSize) throw new ArgumentOutOfRangeException(nameof(tokens), t, "token outside the vocabulary");
        Ensure(N, N / batch);
        _N = N; _P = 0; _batch = batch; _seqLen = N / batch; _sparse = false;
        tokens.CopyTo(_tokens);
    }

    /// <summary>The layers and the final norm over the prepared tokens: on every row, or (sparseLast) with the last
    /// layer after its attention, and the final norm, on the loss rows only, packed into XfRows.</summary>
    private void RunLayers(bool sparseLast)
    {
        var c = Config;
        int N = _N;
        ReadOnlySpan<int> tokens = _tokens.AsSpan(0, N);
        var a = _a!;
        int d = c.HiddenSize, qd = c.QDim, kvd = c.KvDim;
        int Hq = c.NumHeads, Hkv = c.NumKvHeads, hd = c.HeadDim;
        float eps = (float)c.RmsNormEps;

        Timer?.Start();
        EmbeddingOp.Forward(tokens, Weights.Embedding, a.L[0].Resid.AsSpan(0, N * d), d);
        Timer?.Mark("embedding");
        for (int l = 0; l < c.NumLayers; l++)
        {
            var w = Weights.Layers[l];
            var x = a.L[l];
            // attention block: mid = resid + o_proj(attn(rope(q), rope(k), v)) of rmsnorm(resid)
            RmsNormOp.Forward(x.Resid, w.InputNorm, x.Xn1, x.Rstd1, N, d, eps);
            Timer?.Mark("fwd rmsnorm");
            LinearOp.Forward(x.Xn1, w.Wq, w.Bq, x.Q, N, d, qd);
            LinearOp.Forward(x.Xn1, w.Wk, w.Bk, x.K, N, d, kvd);
            LinearOp.Forward(x.Xn1, w.Wv, w.Bv, x.V, N, d, kvd);
            Timer?.Mark("fwd linear");
            RopeOp.Forward(x.Q, N, qd, Hq, _rope!);
            RopeOp.Forward(x.K, N, kvd, Hkv, _rope!);
            Timer?.Mark("fwd rope");
            if (Gates is not null)
            {
                x.EnsureGated(N, c);
                AttnForward(x.Q, x.K, x.V, x.AttFull!, x.LseFull!, N, Hq, Hkv, hd, _fullMasks);
                AttnForward(x.Q, x.K, x.V, x.AttStream!, x.LseStream!, N, Hq, Hkv, hd, _streamMasks);
                HeadGateOp.Forward(x.AttFull, x.AttStream, Gates[l], x.Att, N, Hq, Hkv, hd);
            }
            else if (sparseLast && l == c.NumLayers - 1)
            {
                FlashAttention.Forward(x.Q.AsSpan(0, N * qd), x.K.AsSpan(0, N * kvd), x.V.AsSpan(0, N * kvd), x.Att.AsSpan(0, N * qd), x.Lse.AsSpan(0, N * Hq),
                    _batch, _seqLen, Hq, Hkv, Visibility[l], _activeRows);
                Timer?.Mark("fwd attention");
                LastLayerRowsForward(w, x);
                return;
            }
            else AttnForward(x.Q, x.K, x.V, x.Att, x.Lse, N, Hq, Hkv, hd, Visibility[l]);
            Timer?.Mark("fwd attention");
            x.Resid.AsSpan(0, N * d).CopyTo(x.Mid);
            AfterAttention(w, x, x.Att, l + 1 < c.NumLayers ? a.L[l + 1].Resid : a.Final, N);
        }
        RmsNormOp.Forward(a.Final, Weights.FinalNorm, a.Xf, a.RstdF, N, d, eps);
        Timer?.Mark("fwd rmsnorm");
    }

    /// <summary>The rest of a layer on <paramref name="n"/> rows, x.Mid holding their residual input:
    /// mid += o_proj(att); output = mid + down(silu(gate(m)) ⊙ up(m)) with m = rmsnorm(mid).</summary>
    private void AfterAttention(LayerWeights w, LayerActs x, float[] att, float[] output, int n)
    {
        var c = Config;
        int d = c.HiddenSize, qd = c.QDim, ff = c.IntermediateSize;
        LinearOp.Forward(att, w.Wo, default, x.Mid, n, qd, d, accumulate: true);
        Timer?.Mark("fwd linear");
        RmsNormOp.Forward(x.Mid, w.PostNorm, x.Xn2, x.Rstd2, n, d, (float)c.RmsNormEps);
        Timer?.Mark("fwd rmsnorm");
        LinearOp.Forward(x.Xn2, w.WGate, default, x.Gate, n, d, ff);
        LinearOp.Forward(x.Xn2, w.WUp, default, x.Up, n, d, ff);
        Timer?.Mark("fwd linear");
        SwiGluOp.Forward(x.Gate.AsSpan(0, n * ff), x.Up, x.H.AsSpan(0, n * ff));
        Timer?.Mark("fwd swiglu");
        x.Mid.AsSpan(0, n * d).CopyTo(output);
        LinearOp.Forward(x.H, w.WDown, default, output, n, ff, d, accumulate: true);
        Timer?.Mark("fwd linear");
    }

    /// <summary>Backward of the last <see cref="Forward"/>: grads += lossScale · dLoss/dθ for non-frozen θ.</summary>
    public void Backward(float lossScale = 1f)
    {
        if (_a is null) throw new InvalidOperationException("Backward before Forward");
        using var scope = Compute.Enter();
        Timer?.Start();
        var c = Config; var a = _a;
        int N = _N, P = _P;
        int d = c.HiddenSize, V = c.VocabSize;

        // head: CE → logits → final-norm rows
        a.DLogits.AsSpan(0, P * V).Clear();
        CrossEntropyOp.Backward(a.Probs, _targets.AsSpan(0, P), a.DLogits, P, V, lossScale);
        a.DXfRows.AsSpan(0, (_sparse ? _P2 : P) * d).Clear();
        LinearOp.Backward(a.DLogits, a.XfRows, Weights.LmHead, a.DXfRows, G(Weights.LmHead), default, P, d, V);
        if (_sparse)
        {
            Timer?.Mark("head + loss");
            BackwardSparse();
            return;
        }
        var dXn = a.DXn.AsSpan(0, N * d);
        dXn.Clear();
        for (int p = 0; p < P; p++)
        {
            var dst = dXn.Slice(_positions[p] * d, d);
            var src = a.DXfRows.AsSpan(p * d, d);
            for (int i = 0; i < d; i++) dst[i] += src[i];
        }
        Timer?.Mark("head + loss");
        BackwardBody();
    }

    /// <summary>Backward of the last <see cref="ForwardHidden"/> (or <see cref="Forward"/>) from a gradient
    /// dHidden [B·T × d] w.r.t. the final hidden states: grads += dL/dθ for non-frozen θ (and gates).</summary>
    public void BackwardFromHidden(ReadOnlySpan<float> dHidden)
    {
        if (_a is null) throw new InvalidOperationException("Backward before Forward");
        int n = _N * Config.HiddenSize;
        if (dHidden.Length != n) throw new ArgumentException($"dHidden has {dHidden.Length} values, expected {n}");
        if (_sparse) throw new InvalidOperationException("BackwardFromHidden after a Forward that ran the last layer on the loss rows only; use ForwardHidden");
        using var scope = Compute.Enter();
        dHidden.CopyTo(_a.DXn);
        Timer?.Start();
        BackwardBody();
    }

    /// <summary>From dL/d(final hidden) in DXn down through the layers.</summary>
    private void BackwardBody()
    {
        var c = Config; var a = _a!;
        int N = _N, d = c.HiddenSize;
        int stop = LowestLayerNeedingGrad();
        var dXn = a.DXn.AsSpan(0, N * d);
        var dResid = a.DResid.AsSpan(0, N * d);
        dResid.Clear();
        if (stop > c.NumLayers) { RmsNormOp.Backward(dXn, a.Final, Weights.FinalNorm, a.RstdF, default, G(Weights.FinalNorm), N, d); return; }
        RmsNormOp.Backward(dXn, a.Final, Weights.FinalNorm, a.RstdF, dResid, G(Weights.FinalNorm), N, d);
        Timer?.Mark("bwd rmsnorm");
        BackwardLayers(c.NumLayers - 1, stop);
    }

    /// <summary>Layers top … stop, backward on every row, from dL/d(layer top's output) in DResid; then the embedding.</summary>
    private void BackwardLayers(int top, int stop)
    {
        var c = Config; var a = _a!;
        int N = _N;
        int d = c.HiddenSize, qd = c.QDim, kvd = c.KvDim, ff = c.IntermediateSize;
        int Hq = c.NumHeads, Hkv = c.NumKvHeads, hd = c.HeadDim;
        bool gated = Gates is not null;
        var dXn = a.DXn.AsSpan(0, N * d);
        var dResid = a.DResid.AsSpan(0, N * d);
        for (int l = top; l >= stop; l--)
        {
            var w = Weights.Layers[l];
            var x = a.L[l];
            // MLP block (dResid holds dL/d(out))
            // (the first gradient written into each scratch buffer overwrites it: no zeroing pass)
            var dH = a.DH.AsSpan(0, N * ff);
            LinearOp.Backward(dResid, x.H, w.WDown, dH, G(w.WDown), default, N, ff, d, accumulateDx: false);
            Timer?.Mark("bwd linear");
            var dGate = a.DGate.AsSpan(0, N * ff);
            var dUp = a.DUp.AsSpan(0, N * ff);
            SwiGluOp.Backward(dH, x.Gate, x.Up, dGate, dUp, accumulate: false);
            Timer?.Mark("bwd swiglu");
            LinearOp.Backward(dGate, x.Xn2, w.WGate, dXn, G(w.WGate), default, N, d, ff, accumulateDx: false);
            LinearOp.Backward(dUp, x.Xn2, w.WUp, dXn, G(w.WUp), default, N, d, ff);
            Timer?.Mark("bwd linear");
            RmsNormOp.Backward(dXn, x.Mid, w.PostNorm, x.Rstd2, dResid, G(w.PostNorm), N, d); // dResid = dL/d(mid)
            Timer?.Mark("bwd rmsnorm");
            // attention block
            var dAtt = a.DAtt.AsSpan(0, N * qd);
            LinearOp.Backward(dResid, x.Att, w.Wo, dAtt, G(w.Wo), default, N, qd, d, accumulateDx: false);
            Timer?.Mark("bwd linear");
            var dQ = a.DQ.AsSpan(0, N * qd);
            var dK = a.DK.AsSpan(0, N * kvd);
            var dV = a.DV.AsSpan(0, N * kvd);
            if (gated)
            {
                a.EnsureGated(N, c);
                var dFull = a.DAttFull.AsSpan(0, N * qd); dFull.Clear();
                var dStream = a.DAttStream.AsSpan(0, N * qd); dStream.Clear();
                HeadGateOp.Backward(dAtt, x.AttFull, x.AttStream, Gates![l], dFull, dStream,
                    GatesTrainable ? GateGrads![l] : default, N, Hq, Hkv, hd);
                AttnBackward(dFull, x.Q, x.K, x.V, x.AttFull, x.LseFull, dQ, dK, dV, N, Hq, Hkv, hd, _fullMasks, accumulate: false);
                AttnBackward(dStream, x.Q, x.K, x.V, x.AttStream, x.LseStream, dQ, dK, dV, N, Hq, Hkv, hd, _streamMasks, accumulate: true);
            }
            else AttnBackward(dAtt, x.Q, x.K, x.V, x.Att, x.Lse, dQ, dK, dV, N, Hq, Hkv, hd, Visibility[l], accumulate: false);
            Timer?.Mark("bwd attention");
            RopeOp.Backward(dQ, N, qd, Hq, _rope!);
            RopeOp.Backward(dK, N, kvd, Hkv, _rope!);
            Timer?.Mark("bwd rope");
            LinearOp.Backward(dQ, x.Xn1, w.Wq, dXn, G(w.Wq), G(w.Bq), N, d, qd, accumulateDx: false);
            LinearOp.Backward(dK, x.Xn1, w.Wk, dXn, G(w.Wk), G(w.Bk), N, d, kvd);
            LinearOp.Backward(dV, x.Xn1, w.Wv, dXn, G(w.Wv), G(w.Bv), N, d, kvd);
            Timer?.Mark("bwd linear");
            RmsNormOp.Backward(dXn, x.Resid, w.InputNorm, x.Rstd1, dResid, G(w.InputNorm), N, d); // dResid = dL/d(layer input)
            Timer?.Mark("bwd rmsnorm");
        }
        if (stop == 0) EmbeddingOp.Backward(_tokens.AsSpan(0, N), dResid, G(Weights.Embedding), d);
        Timer?.Mark("embedding");
    }

    /// <summary>Attention of each of the batch's sequences on its own rows; lse is [Hq × T] per sequence.</summary>
    private void AttnForward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        int N, int Hq, int Hkv, int hd, ReadOnlySpan<KeyVisibility> masks)
    {
        int T = _seqLen, qs = T * Hq * hd, ks = T * Hkv * hd;
        if (UseBlockedAttention)
        {
            BlockedAttentionOp.Forward(q[..(N * Hq * hd)], k[..(N * Hkv * hd)], v[..(N * Hkv * hd)], o[..(N * Hq * hd)], lse[..(N * Hq)], N / T, T, Hq, Hkv, hd, masks);
            return;
        }
        for (int b = 0; b < N / T; b++)
        {
            int qo = b * qs, ko = b * ks, lo = b * Hq * T;
            AttentionOp.Forward(q.Slice(qo, qs), k.Slice(ko, ks), v.Slice(ko, ks), o.Slice(qo, qs), lse.Slice(lo, Hq * T), T, Hq, Hkv, hd, masks);
        }
    }

    private void AttnBackward(ReadOnlySpan<float> dO, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        int N, int Hq, int Hkv, int hd, ReadOnlySpan<KeyVisibility> masks, bool accumulate)
    {
        int T = _seqLen, qs = T * Hq * hd, ks = T * Hkv * hd;
        int nq = N * Hq * hd, nk = N * Hkv * hd;
        if (UseBlockedAttention)
        {
            BlockedAttentionOp.Backward(dO[..nq], q[..nq], k[..nk], v[..nk], o[..nq], lse[..(N * Hq)], dq[..nq], dk[..nk], dv[..nk], N / T, T, Hq, Hkv, hd, masks,
                BlockedAttentionOp.DefaultBlockRows, accumulate);
            return;
        }
        if (!accumulate) { dq[..nq].Clear(); dk[..nk].Clear(); dv[..nk].Clear(); }
        for (int b = 0; b < N / T; b++)
        {
            int qo = b * qs, ko = b * ks, lo = b * Hq * T;
            AttentionOp.Backward(dO.Slice(qo, qs), q.Slice(qo, qs), k.Slice(ko, ks), v.Slice(ko, ks), o.Slice(qo, qs), lse.Slice(lo, Hq * T),
                    dq.Slice(qo, qs), dk.Slice(ko, ks), dv.Slice(ko, ks), T, Hq, Hkv, hd, masks);
        }
    }

    private Span<float> G(float[]? value)
    {
        if (value is null) return default;
        var p = _byArray[value];
        return p.Frozen ? default : p.Grad;
    }

    private bool Trainable(float[]? value) => value is not null && !_byArray[value].Frozen;

    /// <summary>The lowest layer backward must reach: 0 if the embedding trains, else the first layer
    /// with a trainable tensor or gate; NumLayers + 1 if nothing below the final norm trains.</summary>
    private int LowestLayerNeedingGrad()
    {
        if (Trainable(Weights.Embedding)) return 0;
        for (int l = 0; l < Config.NumLayers; l++)
        {
            var w = Weights.Layers[l];
            if (Gates is not null && GatesTrainable) return l;
            if (Trainable(w.InputNorm) || Trainable(w.Wq) || Trainable(w.Wk) || Trainable(w.Wv) || Trainable(w.Bq) || Trainable(w.Bk)
                || Trainable(w.Bv) || Trainable(w.Wo) || Trainable(w.PostNorm) || Trainable(w.WGate) || Trainable(w.WUp) || Trainable(w.WDown))
                return l;
        }
        return Config.NumLayers + 1;
    }

    /// <summary>Buffers for N rows (grown only when N exceeds the capacity); the RoPE table for N rows of
    /// sequences of length seqLen (position = row mod seqLen), rebuilt only when that shape changes.</summary>
    private void Ensure(int N, int seqLen)
    {
        if (_rope is null || _rope.Rows != N || _ropeSeqLen != seqLen)
        {
            var pos = new int[N];
            for (int r = 0; r < N; r++) pos[r] = r % seqLen;
            _rope = new RopeTable(Config.HeadDim, Config.RopeTheta, Config.RopeScaling, pos);
            _ropeSeqLen = seqLen;
        }
        if (_a is not null && _a.Capacity >= N) return;
        _a = new Activations(Config, N, _a?.Gated ?? false);
        _tokens = new int[N]; _positions = new int[N]; _targets = new int[N];
    }

    /// <summary>Everything forward saves and backward reads, for up to Capacity tokens. Shapes per layer:
    /// Resid/Xn1/Mid/Xn2 [T × d], Rstd1/Rstd2 [T], Q/Att [T × Hq·hd], K/V [T × Hkv·hd], Lse [Hq × T],
    /// Gate/Up/H [T × ff]. Backward scratch (shared by layers): D* buffers.</summary>
    private sealed class Activations
    {
        public readonly int Capacity;
        public bool Gated;
        public readonly LayerActs[] L;
        public readonly float[] Final, Xf, RstdF, XfRows, Logits, Probs;
        public readonly float[] DResid, DXn, DQ, DK, DV, DAtt, DH, DGate, DUp, DXfRows, DLogits;
        public float[] DAttFull = [], DAttStream = [];
        /// <summary>Packed loss rows of the last layer (see LastLayerOnLossRows): attention output, dO / dQ, and two of width d.</summary>
        public readonly float[] RowsQa, RowsQb, RowsDa, RowsDb;

        public Activations(LlamaConfig c, int T, bool gated)
        {
            Capacity = T;
            int d = c.HiddenSize, V = c.VocabSize;
            L = Enumerable.Range(0, c.NumLayers).Select(_ => new LayerActs(c, T)).ToArray();
            Final = new float[T * d]; Xf = new float[T * d]; RstdF = new float[T];
            XfRows = new float[T * d]; Logits = new float[T * V]; Probs = new float[T * V];
            DResid = new float[T * d]; DXn = new float[T * d];
            DQ = new float[T * c.QDim]; DAtt = new float[T * c.QDim];
            DK = new float[T * c.KvDim]; DV = new float[T * c.KvDim];
            DH = new float[T * c.IntermediateSize]; DGate = new float[T * c.IntermediateSize]; DUp = new float[T * c.IntermediateSize];
            DXfRows = new float[T * d]; DLogits = new float[T * V];
            RowsQa = new float[T / 2 * c.QDim]; RowsQb = new float[T / 2 * c.QDim]; RowsDa = new float[T / 2 * d]; RowsDb = new float[T / 2 * d];
            if (gated) EnsureGated(T, c);
        }

        public void EnsureGated(int T, LlamaConfig c)
        {
            if (Gated) return;
            Gated = true;
            DAttFull = new float[Capacity * c.QDim]; DAttStream = new float[Capacity * c.QDim];
        }
    }

    private sealed class LayerActs(LlamaConfig c, int T)
    {
        public readonly float[] Resid = new float[T * c.HiddenSize], Xn1 = new float[T * c.HiddenSize], Rstd1 = new float[T];
        public readonly float[] Q = new float[T * c.QDim], K = new float[T * c.KvDim], V = new float[T * c.KvDim];
        public readonly float[] Att = new float[T * c.QDim], Lse = new float[c.NumHeads * T];
        public readonly float[] Mid = new float[T * c.HiddenSize], Xn2 = new float[T * c.HiddenSize], Rstd2 = new float[T];
        public readonly float[] Gate = new float[T * c.IntermediateSize], Up = new float[T * c.IntermediateSize], H = new float[T * c.IntermediateSize];
        public float[]? AttFull, AttStream, LseFull, LseStream;

        public void EnsureGated(int T, LlamaConfig c)
        {
            AttFull ??= new float[Resid.Length / c.HiddenSize * c.QDim];
            AttStream ??= new float[AttFull.Length];
            LseFull ??= new float[Lse.Length];
            LseStream ??= new float[Lse.Length];
        }
    }
}
