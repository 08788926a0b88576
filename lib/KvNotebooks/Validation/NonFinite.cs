namespace KvNotebooks.Validation;

/// <summary>
/// NaN and ±Inf in weights or logits are almost always a corrupt file or a diverged run, so loaders refuse
/// them unless the caller asked for them: <c>kvnb --allow-nonfinite …</c> sets <see cref="Allow"/> for that
/// invocation (an <see cref="AsyncLocal{T}"/>, so parallel callers and tests do not see each other's choice).
/// </summary>
public static class NonFinite
{
    private static readonly AsyncLocal<bool> Allowed = new();

    /// <summary>Whether non-finite weights load in the current flow (default false).</summary>
    public static bool IsAllowed => Allowed.Value;

    /// <summary>Allows non-finite values until the returned scope is disposed.</summary>
    public static IDisposable Allow(bool allow = true)
    {
        bool before = Allowed.Value;
        Allowed.Value = allow;
        return new Scope(() => Allowed.Value = before);
    }

    /// <summary>How many values are NaN or ±Inf.</summary>
    public static long Count(ReadOnlySpan<float> values)
    {
        long n = 0;
        foreach (float v in values) if (!float.IsFinite(v)) n++;
        return n;
    }

    /// <summary>Throws <see cref="InputException"/> when <paramref name="values"/> hold NaN/±Inf and they are not allowed.</summary>
    public static void Check(ReadOnlySpan<float> values, string file, string field)
    {
        if (IsAllowed) return;
        long n = Count(values);
        if (n > 0)
            throw new InputException(file, field, $"{n:N0} of {values.Length:N0} values are NaN or ±Inf (pass --allow-nonfinite to load them anyway)");
    }

    private sealed class Scope(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
