using KvNotebooks.Model;

namespace KvNotebooks.Eviction;

/// <summary>Builds an eviction method from command-line style options.</summary>
public static class MethodFactory
{
    public static readonly string[] Names = ["full", "streaming", "headmask"];

    /// <param name="name">full | streaming | headmask.</param>
    /// <param name="config">The model the method will run on (mask shapes are checked against it).</param>
    /// <param name="sink">Streaming heads: sink tokens.</param>
    /// <param name="window">Streaming heads: local window.</param>
    /// <param name="masksPath">0/1 TSV (layers × KV heads) for headmask.</param>
    public static IEvictionMethod Create(string name, LlamaConfig config, int sink = 128, int window = 1024, string? masksPath = null)
    {
        switch (name.ToLowerInvariant())
        {
            case "full":
                return new FullAttention();
            case "streaming":
                return new Streaming(sink, window);
            case "headmask":
            case "duo":
            case "prulong":
                if (masksPath is null) throw new ArgumentException($"method '{name}' needs --masks FILE.tsv (one row per layer, one 0/1 column per KV head)");
                return new HeadMask(HeadMask.LoadTsv(masksPath, config), sink, window);
            default:
                throw new ArgumentException($"unknown method '{name}'; choose one of {string.Join(", ", Names)}");
        }
    }
}
