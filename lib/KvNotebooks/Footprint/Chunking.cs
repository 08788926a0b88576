using System.Globalization;

namespace KvNotebooks.Footprint;

/// <summary>
/// How a prompt is pre-filled: in one pass (<see cref="None"/>) or in chunks of <see cref="Size"/> tokens (the last
/// chunk takes the remainder; a size ≥ the prompt is one pass too). The one way the project says "no chunking":
/// text "none", a result row's chunk column 0.
/// </summary>
public readonly record struct Chunking
{
    private Chunking(int size) => Size = size;

    /// <summary>A single pre-fill.</summary>
    public static Chunking None => default;

    /// <summary>Chunks of <paramref name="size"/> tokens (≥ 1).</summary>
    public static Chunking Of(int size) =>
        size >= 1 ? new(size) : throw new ArgumentOutOfRangeException(nameof(size), size, "a chunk size must be a positive number of tokens");

    /// <summary>Chunk size in tokens; 0 for a single pre-fill.</summary>
    public int Size { get; }
    public bool IsNone => Size == 0;

    /// <summary>The chunk plan of an <paramref name="promptTokens"/>-token prompt.</summary>
    public ChunkPlan Plan(int promptTokens) => new(promptTokens, IsNone ? Math.Max(1, promptTokens) : Size);

    /// <summary>The size of the first chunk of an <paramref name="promptTokens"/>-token prompt.</summary>
    public int EffectiveSize(int promptTokens) => IsNone ? promptTokens : Math.Min(Size, promptTokens);

    /// <summary>A result row's chunk column: 0 is a single pre-fill.</summary>
    public static Chunking FromColumn(int chunk) => chunk <= 0 ? None : Of(chunk);

    /// <summary>"none" or "512".</summary>
    public override string ToString() => IsNone ? "none" : Size.ToString(CultureInfo.InvariantCulture);

    /// <summary>"none" (or "single") or a positive number of tokens.</summary>
    public static Chunking Parse(string text, string option = "--chunk")
    {
        text = text.Trim();
        if (text is "none" or "single") return None;
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int c) && c >= 1 ? Of(c)
            : throw new ArgumentException($"{option}: '{text}' is not a chunk size (a positive number of tokens, or none for a single pre-fill)");
    }

    public static implicit operator Chunking(int size) => Of(size);
}
