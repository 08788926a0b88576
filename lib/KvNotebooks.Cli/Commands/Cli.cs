using System.CommandLine;
using System.Text.Json;
using KvNotebooks.Validation;

namespace KvNotebooks.Cli.Commands;

/// <summary>
/// What every command shares: the <c>--json</c> switch, output and the error policy. Exit codes: 0 success;
/// 2 a user error, printed as one line <c>kvnb: error: FILE: FIELD: RULE</c> (or the option and the problem),
/// never a stack trace; 1 a bug, printed as <c>kvnb: internal error (a bug): TYPE: message at FRAME</c>, with the
/// full stack trace only when the environment variable <c>KVNB_DEBUG=1</c>; 3 results that hold NaN/±Inf
/// (a warning says which; <c>--allow-nonfinite</c> accepts them).
/// </summary>
public static class Cli
{
    public static Option<bool> JsonOption() => new("--json") { Description = "Print machine-readable JSON instead of text" };

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Exit code of a run whose results hold NaN or ±Inf (not allowed with --allow-nonfinite).</summary>
    public const int NonFiniteExitCode = 3;

    /// <summary>Runs a command body: user errors become exit code 2 with one line, bugs exit code 1 with a short report.</summary>
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine($"kvnb: error: {Describe(e)}");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(DescribeBug(e));
            if (Environment.GetEnvironmentVariable("KVNB_DEBUG") == "1") Console.Error.WriteLine(e.ToString());
            return 1;
        }
    }

    /// <summary>The message without .NET's "(Parameter 'x')" / "Actual value was" suffixes, on one line.</summary>
    public static string Describe(Exception e)
    {
        string m = e.Message;
        int cut = m.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (cut >= 0) m = m[..cut];
        cut = m.IndexOf("\nActual value was", StringComparison.Ordinal);
        if (cut >= 0) m = m[..cut];
        return m.Replace("\r", "").Replace('\n', ' ');
    }

    /// <summary>One line saying a bug happened, what and where (the innermost frame of our code, else the top one).</summary>
    public static string DescribeBug(Exception e)
    {
        var frames = new System.Diagnostics.StackTrace(e, fNeedFileInfo: true).GetFrames();
        var frame = frames.FirstOrDefault(f => f.GetMethod()?.DeclaringType?.Namespace?.StartsWith("KvNotebooks", StringComparison.Ordinal) == true)
                    ?? frames.FirstOrDefault();
        string where = frame?.GetMethod() is { } m ? $" at {m.DeclaringType?.FullName}.{m.Name}" +
            (frame.GetFileName() is { } f ? $" ({Path.GetFileName(f)}:{frame.GetFileLineNumber()})" : "") : "";
        return $"kvnb: internal error (a bug, please report it): {e.GetType().Name}: {Describe(e)}{where} (KVNB_DEBUG=1 prints the stack trace)";
    }

    /// <summary>
    /// Which exceptions are the user's to fix (exit 2) rather than bugs (exit 1):
    /// <list type="bullet">
    /// <item><see cref="InputException"/>: a file broke its format's rules (the validation layer names file, field, rule);</item>
    /// <item>an <see cref="ArgumentException"/> (or ArgumentOutOfRange…) thrown by our own code: how commands, option
    /// parsers and the library's argument checks reject a value the user gave ("--evict must be in [0, 1)",
    /// "token 2 has id 99, outside the vocabulary"). One thrown inside .NET (a list indexer, a dictionary's
    /// duplicate key) is a bug;</item>
    /// <item>a file or folder that is missing or not readable (<see cref="FileNotFoundException"/>,
    /// <see cref="DirectoryNotFoundException"/>, <see cref="UnauthorizedAccessException"/>), and other I/O failures of the
    /// machine (a full disk, a locked file: <see cref="IOException"/> except a parser's <see cref="EndOfStreamException"/>);</item>
    /// <item><see cref="InvalidDataException"/>: the head-mask TSV loader's error until it moves to the validation layer.</item>
    /// </list>
    /// Everything else (InvalidOperation, NullReference, OutOfMemory, Format, Overflow, Json…) is a bug.
    /// </summary>
    public static bool IsUserError(Exception e) => e is InputException or FileNotFoundException or DirectoryNotFoundException
        or UnauthorizedAccessException or InvalidDataException || (e is ArgumentException && ThrownByUs(e))
        || (e is IOException && e is not EndOfStreamException);

    /// <summary>Whether the frame that raised <paramref name="e"/> is ours (KvNotebooks.*), skipping .NET's throw helpers.</summary>
    public static bool ThrownByUs(Exception e)
    {
        foreach (var frame in new System.Diagnostics.StackTrace(e, false).GetFrames())
        {
            var type = frame.GetMethod()?.DeclaringType;
            if (type is null) continue;
            if (typeof(Exception).IsAssignableFrom(type) || type.Name.Contains("ThrowHelper", StringComparison.Ordinal)) continue;
            return type.Namespace?.StartsWith("KvNotebooks", StringComparison.Ordinal) == true;
        }
        return false;
    }

    /// <summary>Warns on stderr when <paramref name="values"/> hold NaN/±Inf; returns the exit code to use
    /// (<see cref="NonFiniteExitCode"/>, or 0 with --allow-nonfinite).</summary>
    public static int CheckFinite(ReadOnlySpan<float> values, string what)
    {
        long n = NonFinite.Count(values);
        if (n == 0) return 0;
        Console.Error.WriteLine($"kvnb: warning: {what}: {n:N0} of {values.Length:N0} values are NaN or ±Inf" +
            (NonFinite.IsAllowed ? " (allowed by --allow-nonfinite)" : " (exit code 3; pass --allow-nonfinite to accept them)"));
        return NonFinite.IsAllowed ? 0 : NonFiniteExitCode;
    }

    public static void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Parses "1 2 3" or "1,2,3" into token ids.</summary>
    public static int[] ParseTokens(string text)
    {
        var parts = text.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i]))
                throw new ArgumentException($"--tokens: '{parts[i]}' is not an integer token id");
        if (ids.Length == 0) throw new ArgumentException("--tokens: no token ids given");
        return ids;
    }
}
