namespace KvNotebooks.Eviction;

/// <summary>Full attention: nothing is ever evicted (the baseline, footprint 100% with a single pre-fill).</summary>
public sealed class FullAttention : IEvictionMethod
{
    public string Name => "full";
    public void Evict(EvictionContext ctx) { }
}
