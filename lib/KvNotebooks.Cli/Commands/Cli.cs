using System.CommandLine;
using System.Text.Json;

namespace KvNotebooks.Cli.Commands;

/// <summary>What every command shares: the <c>--json</c> switch, output and the error policy
/// (bad input → one line naming the problem on stderr and exit code 2, never a stack trace).</summary>
public static class Cli
{
    public static Option<bool> JsonOption() => new("--json") { Description = "Print machine-readable JSON instead of text" };

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Runs a command body; user errors become exit code 2 with a clear message.</summary>
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
    }

    /// <summary>The message without .NET's "(Parameter 'x')" / "Actual value was" suffixes.</summary>
    public static string Describe(Exception e)
    {
        string m = e.Message;
        int cut = m.IndexOf(" (Parameter '", StringComparison.Ordinal);
        if (cut >= 0) m = m[..cut];
        cut = m.IndexOf("\nActual value was", StringComparison.Ordinal);
        return cut >= 0 ? m[..cut] : m;
    }

    public static bool IsUserError(Exception e) => e is InvalidDataException or FileNotFoundException
        or DirectoryNotFoundException or ArgumentException or FormatException or InvalidOperationException
        or IOException or UnauthorizedAccessException or JsonException or OutOfMemoryException;

    public static void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Parses "1 2 3" or "1,2,3" into token ids.</summary>
    public static int[] ParseTokens(string text)
    {
        var parts = text.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i]))
                throw new FormatException($"--tokens: '{parts[i]}' is not an integer token id");
        if (ids.Length == 0) throw new ArgumentException("--tokens: no token ids given");
        return ids;
    }
}
