using KvNotebooks.Cache;
using KvNotebooks.Footprint;
using KvNotebooks.Model;

namespace KvNotebooks.Eviction;

/// <summary>
/// What an eviction method sees when it is called: one layer, right after that layer's attention over a step (a
/// pre-fill chunk with its patch, or a decode token). The method evicts from <c>Cache.Layer(Layer)</c>. Immutable.
/// </summary>
public readonly struct LayerStep
{
    public required LlamaConfig Config { get; init; }
    public required KvCache Cache { get; init; }
    public required int Layer { get; init; }
    /// <summary>The step: its phase, rows (chunk + patch), start position, whether it is the last chunk.</summary>
    public required GenerationStep Step { get; init; }
    /// <summary>Post-RoPE queries of the step's last <see cref="QueryRows"/> rows for this layer, [QueryRows × QDim],
    /// when the method asked for them (<see cref="IEvictionMethod.ObservationWindow"/>); else null.</summary>
    public float[]? Queries { get; init; }
    public int QueryRows { get; init; }

    /// <summary>Position of query row <paramref name="j"/> of <see cref="Queries"/>.</summary>
    public int QueryPosition(int j) => Step.Start + Step.Rows - QueryRows + j;
}

/// <summary>
/// A KV-reduction method at run time: which entries of a layer to keep. When it is asked (after each chunk, each
/// decode step) is the session's; how KVs are stored (precision, quantization, GQA layout) is the session's too
/// (<see cref="KvStorage"/>), so any method runs over any storage.
/// </summary>
public interface IEvictionMethod
{
    /// <summary>Short name used in tables and CSV rows.</summary>
    string Name { get; }

    /// <summary>How many of a step's last query rows the method scores with (0 = it needs none).
    /// Score-based methods (SnapKV, PyramidKV, H2O…) ask for their observation window here.</summary>
    int ObservationWindow => 0;

    /// <summary>Patched chunked eviction: how many of the prompt's last tokens the session appends to
    /// every non-final pre-fill chunk (0 = none). The method must evict their KVs itself.</summary>
    int PatchLength => 0;

    /// <summary>How a prompt is cut into chunks under <paramref name="chunking"/> (Locret pre-fills its last tokens
    /// as a chunk of their own).</summary>
    ChunkPlan Plan(int promptTokens, Chunking chunking) => chunking.Plan(promptTokens);

    /// <summary>A method with per-run state returns a fresh copy here; the session calls it once.</summary>
    IEvictionMethod ForSession() => this;

    /// <summary>Evicts from layer <c>step.Layer</c> after its attention over the current step.</summary>
    void Evict(in LayerStep step);

    /// <summary>Whether the method evicts in <see cref="EndStep"/> rather than layer by layer (the storage then settles
    /// after that, so that quantization never turns a candidate into codes before it is judged).</summary>
    bool EvictsAtEndOfStep => false;

    /// <summary>Called once a step has gone through every layer, before the meter reads the cache
    /// (methods that need every layer's scores before deciding, like ZigZagKV, evict here).</summary>
    void EndStep(GenerationStep step, KvCache cache) { }
}
