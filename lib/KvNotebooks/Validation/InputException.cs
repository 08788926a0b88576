namespace KvNotebooks.Validation;

/// <summary>
/// Bad input: a file (or a command-line value) that breaks a rule of its format. Carries the file, the
/// field as a JSON-style path (<c>stages[3].tasks.rag</c>, <c>row 12.score</c>, <c>header</c>) and the rule
/// broken, so the CLI can print one line that names all three. Every loader's validation raises this and
/// only this for bad input; any other exception out of a loader is a bug (the CLI reports it as one).
/// </summary>
public sealed class InputException : Exception
{
    public InputException(string file, string field, string rule, Exception? inner = null)
        : base(Format(file, field, rule), inner)
    {
        File = file;
        Field = field;
        Rule = OneLine(rule);
    }

    /// <summary>The file (path as given), or a name such as "--tokens" for a command-line value.</summary>
    public string File { get; }
    /// <summary>Where in the file: a JSON path, "line 12", "row 3.score", "header"; "" for the file as a whole.</summary>
    public string Field { get; }
    /// <summary>The rule broken, in words.</summary>
    public string Rule { get; }

    private static string Format(string file, string field, string rule) =>
        field.Length == 0 ? $"{file}: {OneLine(rule)}" : $"{file}: {field}: {OneLine(rule)}";

    /// <summary>Messages go on one line of a terminal (parser messages may hold line breaks).</summary>
    private static string OneLine(string s) => s.Replace("\r", "").Replace('\n', ' ');

    /// <summary>"a.b" / "a[3]" / "b" when <paramref name="parent"/> is empty.</summary>
    public static string Join(string parent, string key) => parent.Length == 0 ? key : $"{parent}.{key}";
    public static string Join(string parent, int index) => $"{parent}[{index}]";
}
