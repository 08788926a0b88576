namespace KvNotebooks.Validation.Fuzz;

/// <summary>One damaged input: new bytes for the target file, or a folder where the file should be.</summary>
public sealed record Mutation(string Mutator, byte[]? Bytes, bool AsFolder = false)
{
    public static Mutation Folder(string mutator) => new(mutator, null, AsFolder: true);
}

/// <summary>A named way to damage a file's bytes; returns null when it does not apply to these bytes.</summary>
public sealed record Mutator(string Name, Func<byte[], Random, byte[]?> Apply);

/// <summary>
/// A file format under fuzz, registered once: a valid folder (the target file and what it needs beside it),
/// the mutators that damage the target, the loader to run, and what a correct load looks like. Adding a
/// format is one of these (see <see cref="LibraryFuzzFormats"/>).
/// </summary>
public sealed record FuzzFormat
{
    /// <summary>Short name for <c>kvnb fuzz --format</c>.</summary>
    public required string Name { get; init; }
    /// <summary>The file in the folder that is damaged.</summary>
    public required string Target { get; init; }
    /// <summary>The valid folder: file name → bytes (the target among them).</summary>
    public required Func<IReadOnlyDictionary<string, byte[]>> Seed { get; init; }
    public required IReadOnlyList<Mutator> Mutators { get; init; }
    /// <summary>Loads the folder's files the way the project does; bad input must raise <see cref="InputException"/>.
    /// It may throw <see cref="FuzzViolationException"/> itself (e.g. a failed load that changed its target).</summary>
    public required Func<string, object?> Load { get; init; }
    /// <summary>Null when a value the loader returned is right, else what is wrong with it (a silent bad load).
    /// Checks the format's invariants independently of the loader.</summary>
    public required Func<object?, string?> Check { get; init; }
    /// <summary>Most bytes one load may allocate beyond 16 × the input's size (checked after each load, on the loading thread).</summary>
    public long AllocationCap { get; init; } = 256L << 20;
}

/// <summary>Thrown by a format's <see cref="FuzzFormat.Load"/> when it sees a violation a plain exception would hide.</summary>
public sealed class FuzzViolationException(string kind, string detail) : Exception(detail)
{
    public string Kind { get; } = kind;
}
