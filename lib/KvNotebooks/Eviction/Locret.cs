using KvNotebooks.Footprint;

namespace KvNotebooks.Eviction;

/// <summary>
/// Locret (Huang et al. 2024): retaining heads predict each KV's importance; chunked pre-fill keeps the best of each
/// chunk plus its last tokens (stabilizers), and the prompt's last tokens are pre-filled as a chunk of their own.
/// The accountant counts it (P_k = P_{k−1} + min(round((1 − p)·c_k) + stabilizers, c_k)); the engine needs trained
/// retaining heads, which this build does not have yet, so it refuses to run it.
/// </summary>
public static class Locret
{
    public static readonly Knob<int> StabilizersKnob = new("stabilizers", "stabilizers", 2500, "locret: last tokens of each chunk always kept",
        n => n >= 0 ? null : "must be ≥ 0");
    public static readonly Knob<int> LocalLenKnob = new("local-len", "local-len", 100, "locret: last prompt tokens pre-filled as a chunk of their own",
        n => n >= 0 ? null : "must be ≥ 0");

    public static MethodDescriptor Descriptor { get; } = new()
    {
        Name = "locret",
        Kind = MethodKind.ScoresTokens,
        Summary = "Locret: retaining heads score each KV; chunks keep their best plus stabilizers (accountant only for now)",
        Knobs = [StabilizersKnob, LocalLenKnob],
        Footprint = (s, shape) => s.Storage.Quantization is not null
            ? throw new ArgumentException("the accountant counts Locret over full-precision storage only")
            : KvFootprint.Locret(shape.PromptTokens, shape.GenTokens, shape.Chunking.EffectiveSize(shape.PromptTokens),
            s.EffectiveSchedule.Budget.Evict, s.Get(StabilizersKnob), s.Get(LocalLenKnob)),
    };
}
