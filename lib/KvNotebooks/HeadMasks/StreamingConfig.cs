using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.HeadMasks;

/// <summary>
/// The streaming head of DuoAttention and PruLong, scaled to our contexts: <see cref="Sink"/> first tokens and a local
/// <see cref="Window"/>, trained block-wise in blocks of <see cref="Block"/> tokens (⌈Sink/Block⌉ sink blocks,
/// ⌈Window/Block⌉ local blocks) and kept token-wise at inference (the same Sink and Window), with pre-fill chunks of
/// <see cref="ChunkFraction"/> of the prompt. One file, <c>data/configs/masks/streaming.json</c>, is read by every
/// mask-training config and by the inference methods, so training and evaluation use the same head.
/// </summary>
public sealed record StreamingConfig(int Sink, int Window, int Block, double ChunkFraction)
{
    /// <summary>Where the shipped configs keep it, relative to the repository root.</summary>
    public const string DefaultPath = "data/configs/masks/streaming.json";

    /// <summary>The block-granular visibility a streaming head trains with.</summary>
    public KeyVisibility Training => KeyVisibility.Streaming(Sink, Window, Block);

    /// <summary>The pre-fill chunk for a prompt of <paramref name="promptTokens"/> tokens: round(ChunkFraction · n), at least 1.</summary>
    public int ChunkFor(int promptTokens) => Math.Max(1, (int)Math.Round(promptTokens * ChunkFraction));

    public static StreamingConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"streaming config '{path}' does not exist", path);
        JsonNode? node;
        try { node = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
        return FromJson(node as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object"), path);
    }

    /// <summary>Reads {"sink", "window", "block", "chunk_fraction"}; errors name the source and the field.</summary>
    public static StreamingConfig FromJson(JsonObject o, string source)
    {
        int Int(string key)
        {
            if (o[key] is not JsonValue v || !v.TryGetValue(out int x)) throw new InvalidDataException($"{source}: \"{key}\" must be an integer");
            return x;
        }
        double fraction = o["chunk_fraction"] is JsonValue f && f.TryGetValue(out double d) ? d
            : throw new InvalidDataException($"{source}: \"chunk_fraction\" must be a number");
        foreach (var (key, _) in o)
            if (key is not ("sink" or "window" or "block" or "chunk_fraction"))
                throw new InvalidDataException($"{source}: unknown field \"{key}\" (fields: sink, window, block, chunk_fraction)");
        var c = new StreamingConfig(Int("sink"), Int("window"), Int("block"), fraction);
        if (c.Sink < 0 || c.Window < 1 || c.Block < 1) throw new InvalidDataException($"{source}: need sink ≥ 0, window ≥ 1 and block ≥ 1 (got {c.Sink}, {c.Window}, {c.Block})");
        if (!(c.ChunkFraction > 0 && c.ChunkFraction <= 1)) throw new InvalidDataException($"{source}: chunk_fraction must be in (0, 1] (got {c.ChunkFraction})");
        return c;
    }

    public JsonObject ToJson() => new() { ["sink"] = Sink, ["window"] = Window, ["block"] = Block, ["chunk_fraction"] = ChunkFraction };
}
