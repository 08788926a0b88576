using System.Numerics.Tensors;
using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Model;

namespace KvNotebooks.Inference;

/// <summary>
/// One generation: chunked pre-fill of a prompt (chunk size C; C ≥ prompt length is a single
/// pre-fill), then greedy decoding. After each layer's attention in every chunk and decode step, the
/// meter records what each head held and the eviction method trims that layer.
/// As in the paper's accounting (docs/footprint.md, T = n + m), every generated token is also a query
/// row: its key and value are appended, the last generated token's included.
/// The cache is laid out as the session is told (<see cref="KvStorage"/>: precision, quantized, replicated per
/// query head), whatever the method; a method that patches (<see cref="IEvictionMethod.PatchLength"/>) gets the
/// prompt's last tokens appended to every non-final chunk, at the positions right after the chunk.
/// </summary>
public sealed class Session : ILayerObserver, IDisposable
{
    private readonly LlamaModel _model;
    private readonly float[] _logits;
    private GenerationStep _step;
    private int _nextPosition;
    private int _promptLength;
    private int _decodeSteps;
    private float[]? _obsQueries;

    /// <param name="model">The model (its compute context runs every step).</param>
    /// <param name="method">What to evict (a fresh copy is taken: methods may keep per-run state).</param>
    /// <param name="chunking">How the prompt is pre-filled (default: one pass).</param>
    /// <param name="storage">How KVs are stored (default: fp32, one copy per KV head).</param>
    /// <param name="pageSize">Entries per cache page.</param>
    public Session(LlamaModel model, IEvictionMethod method, Chunking chunking = default, KvStorage? storage = null, int pageSize = 64)
    {
        _model = model;
        Method = method.ForSession();
        Chunking = chunking;
        Storage = storage ?? KvStorage.Default;
        Cache = model.NewCache(pageSize, Storage);
        Meter = new FootprintMeter(model.Config.NumLayers, Cache.NumKvHeads);
        _logits = new float[model.Config.VocabSize];
    }

    /// <summary>A session for a configured method: the method it builds and the storage it asks for.</summary>
    public Session(LlamaModel model, MethodSpec spec, Chunking chunking = default, int pageSize = 64)
        : this(model, spec.Create(model.Config), chunking, spec.EffectiveStorage, pageSize) { }

    public IEvictionMethod Method { get; }
    public Chunking Chunking { get; }
    public KvStorage Storage { get; }
    public KvCache Cache { get; }
    public FootprintMeter Meter { get; }
    /// <summary>Called after each pre-fill chunk and decode step with (rows done, rows planned so far).</summary>
    public Action<int, int>? Progress { get; set; }

    /// <summary>Frees the cache: its pages go to the model's page recycler for the next session (fresh
    /// pages are slow on these machines). Meter and cache counters stay readable; the session cannot run on.</summary>
    public void Dispose() => Cache.Dispose();

    /// <summary>Logits that predicted the most recent token (after pre-fill: the prompt's next token).</summary>
    public ReadOnlySpan<float> LastLogits => _logits;

    /// <summary>
    /// Pre-fills <paramref name="prompt"/> step by step as the method's plan says (<see cref="ChunkPlan.Steps"/>:
    /// chunks, with the prompt's last tokens appended to each non-final chunk when the method patches). When
    /// <paramref name="allLogits"/> is given ([n × V]), every prompt position's logits are written there.
    /// </summary>
    public void Prefill(ReadOnlySpan<int> prompt, float[]? allLogits = null)
    {
        if (_promptLength > 0) throw new InvalidOperationException("this session has already pre-filled a prompt");
        if (prompt.IsEmpty) throw new ArgumentException("the prompt is empty");
        int V = _model.Config.VocabSize, n = prompt.Length;
        if (allLogits is not null && allLogits.Length < (long)n * V)
            throw new ArgumentException($"allLogits holds {allLogits.Length} values, {(long)n * V} needed");
        _promptLength = n;
        using var scope = _model.Compute.Enter();   // eviction at the end of a step runs under the model's context too
        var steps = Method.Plan(n, Chunking).Steps(Method.PatchLength);
        int maxRows = steps.Max(s => s.Rows);
        var positions = new int[maxRows];
        var tokens = new int[maxRows];
        float[]? patchLogits = allLogits is not null && steps.Any(s => s.PatchLength > 0) ? new float[maxRows * V] : null;
        foreach (var step in steps)
        {
            int start = step.Start, len = step.Length, extra = step.PatchLength;
            // Patched chunked eviction: the prompt's last tokens follow the chunk, at the next positions.
            prompt.Slice(start, len).CopyTo(tokens);
            if (extra > 0) prompt[(n - extra)..].CopyTo(tokens.AsSpan(len));
            for (int i = 0; i < step.Rows; i++) positions[i] = start + i;
            BeginStep(step);
            Span<float> logits = allLogits is null ? _logits
                : extra > 0 ? patchLogits.AsSpan(0, step.Rows * V) : allLogits.AsSpan(start * V, len * V);
            var mode = allLogits is not null ? LogitRows.All : step.IsFinalChunk ? LogitRows.Last : LogitRows.None;
            _model.Forward(tokens.AsSpan(0, step.Rows), positions.AsSpan(0, step.Rows), Cache, mode, logits, this);
            if (allLogits is not null && extra > 0) logits[..(len * V)].CopyTo(allLogits.AsSpan(start * V, len * V));
            EndStep();
            Progress?.Invoke(start + len, n);
        }
        if (allLogits is not null) allLogits.AsSpan((n - 1) * V, V).CopyTo(_logits);
        _nextPosition = n;
    }

    /// <summary>
    /// Greedy decoding, the one loop every caller uses: the argmax token is generated and fed as a decode step, up to
    /// <paramref name="maxTokens"/> tokens; <paramref name="stopToken"/> (e.g. &lt;eos&gt;), when generated, ends it
    /// and is neither returned nor fed. The last token is fed too (its KV counts in T = n + m) but needs no logits.
    /// </summary>
    public int[] Generate(int maxTokens, int stopToken = -1)
    {
        if (_promptLength == 0) throw new InvalidOperationException("pre-fill a prompt before generating");
        if (maxTokens < 0) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "cannot generate a negative number of tokens");
        var output = new List<int>(maxTokens);
        while (output.Count < maxTokens)
        {
            int token = TensorPrimitives.IndexOfMax(_logits);
            if (token == stopToken) break;
            output.Add(token);
            Decode(token, needLogits: output.Count < maxTokens);
        }
        return output.ToArray();
    }

    /// <summary>Feeds one token at the next position (a decode step).</summary>
    public void Decode(int token, bool needLogits = true)
    {
        if (_promptLength == 0) throw new InvalidOperationException("pre-fill a prompt before decoding");
        int position = _nextPosition++;
        using var scope = _model.Compute.Enter();
        BeginStep(GenerationStep.Decode(_decodeSteps++, position, _promptLength));
        _model.Forward([token], [position], Cache, needLogits ? LogitRows.Last : LogitRows.None, _logits, this);
        EndStep();
        Progress?.Invoke(_nextPosition, _nextPosition);
    }

    /// <summary>Pre-fill then greedy generation, with the measured footprint and memory.</summary>
    public RunResult Run(ReadOnlySpan<int> prompt, int genTokens, int stopToken = -1)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        Prefill(prompt);
        double prefillSeconds = sw.Elapsed.TotalSeconds;
        var generated = Generate(genTokens, stopToken);
        double total = sw.Elapsed.TotalSeconds;
        return Result(prompt.Length, generated, prefillSeconds, total - prefillSeconds);
    }

    /// <summary>The measurements so far as a <see cref="RunResult"/>, for a caller that drove
    /// <see cref="Prefill"/> and <see cref="Decode"/> itself (<paramref name="generated"/>: its answer).</summary>
    public RunResult Result(int promptTokens, int[] generated, double prefillSeconds, double decodeSeconds) =>
        new(Method.Name, promptTokens, generated.Length, Chunking.EffectiveSize(promptTokens), generated,
            Meter.Footprint, Meter.PeakKv, Meter.Entries, Meter.PeakEntries, Meter.FullEntries,
            Cache.PeakAllocatedBytes, Cache.LiveEntries, prefillSeconds, decodeSeconds)
        {
            Schedule = (Method as ScheduledEviction)?.Schedule.ToString(),
            StoredHeads = Meter.NumHeads,
            PeakHeldEntries = Cache.PeakHeldEntries,
            PeakTransientBytes = Cache.TransientPeakBytes,
            FinalBytes = Cache.AllocatedBytes,
            EntryBits = Meter.EntryBits,
            PatchRows = Meter.PatchRows,
            PatchEntries = Meter.PatchEntries,
        };

    private void BeginStep(GenerationStep step)
    {
        _step = step;
        Meter.BeginStep(step.Length, step.PatchLength);
        Cache.Pool.ResetStepPeak();
    }

    private void EndStep()
    {
        Method.EndStep(_step, Cache);
        if (Method.EvictsAtEndOfStep)
            for (int l = 0; l < Cache.NumLayers; l++) Cache.EndLayerStep(l);
        Meter.EndStep(Cache, _step.Phase == Phase.Prefill);
    }

    void ILayerObserver.AfterAttention(int layer, int rows, float[] queries)
    {
        int bits = Cache.QuantizedBits;
        for (int h = 0; h < Cache.NumKvHeads; h++)
            Meter.RecordHead(Cache.HeadEntries(layer, h), Cache.QuantizedEntries(layer, h), bits);
        int k = Math.Min(Method.ObservationWindow, rows);
        if (k > 0)
        {
            int qDim = _model.Config.QDim;
            if (_obsQueries is null || _obsQueries.Length < k * qDim) _obsQueries = new float[k * qDim];
            Array.Copy(queries, (rows - k) * qDim, _obsQueries, 0, k * qDim);
        }
        var step = new LayerStep
        {
            Config = _model.Config, Cache = Cache, Layer = layer, Step = _step,
            Queries = k > 0 ? _obsQueries : null, QueryRows = k > 0 ? k : 0,
        };
        Method.Evict(step);
        if (!Method.EvictsAtEndOfStep) Cache.EndLayerStep(layer);
    }
}

/// <summary>The outcome of <see cref="Session.Run"/>: generated ids, the measured footprint and peak
/// KV (fractions, docs/footprint.md), their integer entry counts, and the peak bytes the cache held.
/// <see cref="PeakKvBytes"/> is the cache's real allocation at its peak (pages + quantized blocks), not a
/// formula; <see cref="PeakHeldEntries"/> the most entries it held at once over all layers and heads.</summary>
public sealed record RunResult(
    string Method, int PromptTokens, int GenTokens, int ChunkSize, int[] Generated,
    double Footprint, double PeakKv, long Entries, long PeakEntries, long FullEntries,
    long PeakKvBytes, long FinalEntries, double PrefillSeconds, double DecodeSeconds)
{
    /// <summary>The schedule of a score-based method ("patched, evict 0.5, window 64"), else null.</summary>
    public string? Schedule { get; init; }
    /// <summary>(layer, stored head) pairs: layers × KV heads, or × query heads when replicated.</summary>
    public int StoredHeads { get; init; }
    /// <summary>The most entries the cache held at the same moment (all layers and heads).</summary>
    public long PeakHeldEntries { get; init; }
    /// <summary>Peak bytes of dequantized views built for attention (quantized KV only).</summary>
    public long PeakTransientBytes { get; init; }
    /// <summary>Bytes the cache holds at the end of the run.</summary>
    public long FinalBytes { get; init; }
    /// <summary>Σ over heads and rows of the bits of the entries each row saw (16 per full-precision entry).</summary>
    public long EntryBits { get; init; }
    /// <summary>Patch rows appended by patched chunked eviction (not part of T) and the entries they saw.</summary>
    public long PatchRows { get; init; }
    public long PatchEntries { get; init; }
}
