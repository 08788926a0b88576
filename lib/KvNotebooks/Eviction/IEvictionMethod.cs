using KvNotebooks.Cache;
using KvNotebooks.Model;

namespace KvNotebooks.Eviction;

/// <summary>Which stage of inference a step belongs to.</summary>
public enum Phase { Prefill, Decode }

/// <summary>
/// What an eviction method sees when it is called: one layer, right after that layer's attention over
/// a pre-fill chunk or a decode step. The method evicts from <c>Cache.Layer(Layer)</c>.
/// </summary>
public sealed class EvictionContext
{
    public required LlamaConfig Config { get; init; }
    public required KvCache Cache { get; init; }
    public int Layer { get; set; }
    public Phase Phase { get; set; }
    /// <summary>Index of the pre-fill chunk (0-based), or of the decode step.</summary>
    public int Step { get; set; }
    /// <summary>Query rows of this forward pass: the chunk length (plus <see cref="PatchRows"/>), or 1 when decoding.</summary>
    public int Rows { get; set; }
    /// <summary>Rows appended after the chunk for patched chunked eviction (the prompt's last tokens, at
    /// positions right after the chunk); they are the last <see cref="PatchRows"/> of <see cref="Rows"/>
    /// and their KVs are the newest entries of every head. 0 otherwise.</summary>
    public int PatchRows { get; set; }
    /// <summary>Position of this step's first token.</summary>
    public int StartPosition { get; set; }
    /// <summary>True for the last pre-fill chunk.</summary>
    public bool IsFinalChunk { get; set; }
    public int PromptLength { get; set; }
    /// <summary>Post-RoPE queries of this step's last <see cref="QueryRows"/> rows for this layer,
    /// [QueryRows × QDim], when the method asked for them (<see cref="IEvictionMethod.ObservationWindow"/>).</summary>
    public float[]? Queries { get; set; }
    public int QueryRows { get; set; }
    /// <summary>Position of query row <paramref name="j"/> of <see cref="Queries"/>.</summary>
    public int QueryPosition(int j) => StartPosition + Rows - QueryRows + j;
}

/// <summary>
/// A KV-reduction method: which entries of a layer to keep. When it is asked (after each chunk, each
/// decode step) is the session's schedule, not the method's.
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

    /// <summary>How the cache must store KVs for this method (replicated per query head, quantized).</summary>
    KvStorage Storage => KvStorage.Default;

    /// <summary>A method with per-run state returns a fresh copy here; the session calls it once.</summary>
    IEvictionMethod ForSession() => this;

    /// <summary>Evicts from layer <c>ctx.Layer</c> after its attention over the current step.</summary>
    void Evict(EvictionContext ctx);

    /// <summary>Called once a step has gone through every layer, before the meter reads the cache
    /// (methods that need every layer's scores before deciding, like ZigZagKV, evict here).</summary>
    void EndStep(EvictionContext ctx) { }
}
