using System.Text.Json;
using System.Text.Json.Nodes;

namespace KvNotebooks.Validation;

/// <summary>What a JSON format allows beyond strict JSON, and how deep it may nest.</summary>
public sealed record JsonRules
{
    /// <summary>Nesting deeper than this is refused (the parser stops there: no stack overflow, no huge trees).</summary>
    public int MaxDepth { get; init; } = 64;
    public bool AllowComments { get; init; }
    public bool AllowTrailingCommas { get; init; }

    public static JsonRules Strict { get; } = new();
    /// <summary>Hand-written configs: // comments and trailing commas are fine.</summary>
    public static JsonRules HandWritten { get; } = new() { AllowComments = true, AllowTrailingCommas = true };
}

/// <summary>
/// JSON parsing for every loader: valid UTF-8 (checked up front, with the byte offset), no duplicate keys
/// (System.Text.Json would keep one silently or throw ArgumentException later), no lone surrogates in
/// strings, a depth cap, and every problem an <see cref="InputException"/> naming the file and the path.
/// Size caps are the caller's (<see cref="InputFile.ReadAllBytes"/> checks them before reading).
/// </summary>
public static class StrictJson
{
    /// <summary>Parses and validates; the caller disposes the document. <paramref name="field"/> prefixes paths
    /// (e.g. "line 12" for JSON lines, "header" for a safetensors header).</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> utf8, string file, JsonRules? rules = null, string field = "")
    {
        rules ??= JsonRules.Strict;
        var bytes = utf8.Span;
        int bom = InputFile.SkipBom(bytes).Length != bytes.Length ? 3 : 0;
        utf8 = utf8[bom..];
        if (!System.Text.Unicode.Utf8.IsValid(utf8.Span))
            throw new InputException(file, field, $"invalid UTF-8 at byte {InputFile.FirstInvalidUtf8(utf8.Span) + bom}");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8, Options(rules));
        }
        catch (JsonException e)
        {
            throw new InputException(file, Field(field, e.Path),
                $"not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1} ({Describe(e)})", e);
        }
        try
        {
            Check(doc.RootElement, file, field);
        }
        catch
        {
            doc.Dispose();
            throw;
        }
        return doc;
    }

    /// <summary>Parses text (already decoded) with the same checks.</summary>
    public static JsonDocument Parse(string text, string file, JsonRules? rules = null, string field = "")
    {
        if (HasLoneSurrogate(text, out int at)) throw new InputException(file, field, $"invalid text: a lone UTF-16 surrogate at character {at}");
        return Parse(System.Text.Encoding.UTF8.GetBytes(text), file, rules, field);
    }

    /// <summary>Validated JSON as a mutable <see cref="JsonNode"/> tree (for formats that are edited and written back).</summary>
    public static JsonNode? ParseNode(ReadOnlyMemory<byte> utf8, string file, JsonRules? rules = null, string field = "")
    {
        rules ??= JsonRules.Strict;
        using (Parse(utf8, file, rules, field)) { }
        return JsonNode.Parse(utf8.Span[(InputFile.SkipBom(utf8.Span).Length != utf8.Length ? 3 : 0)..], documentOptions: Options(rules));
    }

    public static JsonNode? ParseNode(string text, string file, JsonRules? rules = null, string field = "")
    {
        using (Parse(text, file, rules, field)) { }
        return JsonNode.Parse(text, documentOptions: Options(rules ?? JsonRules.Strict));
    }

    private static JsonDocumentOptions Options(JsonRules rules) => new()
    {
        MaxDepth = rules.MaxDepth,
        CommentHandling = rules.AllowComments ? JsonCommentHandling.Skip : JsonCommentHandling.Disallow,
        AllowTrailingCommas = rules.AllowTrailingCommas,
    };

    /// <summary>Duplicate keys and undecodable strings (escaped lone surrogates), with the path of the first.</summary>
    private static void Check(JsonElement e, string file, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                HashSet<string>? seen = null;
                foreach (var p in e.EnumerateObject())
                {
                    string name = Decode(() => p.Name, file, path);
                    if (HasLoneSurrogate(name, out _)) throw new InputException(file, path, $"key '{Printable(name)}' holds a lone UTF-16 surrogate");
                    seen ??= new HashSet<string>(StringComparer.Ordinal);
                    if (!seen.Add(name)) throw new InputException(file, InputException.Join(path, name), "duplicate key");
                    Check(p.Value, file, InputException.Join(path, name));
                }
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray()) Check(item, file, InputException.Join(path, i++));
                break;
            case JsonValueKind.String:
                string s = Decode(() => e.GetString()!, file, path);
                if (HasLoneSurrogate(s, out int at)) throw new InputException(file, path, $"string holds a lone UTF-16 surrogate at character {at}");
                break;
        }
    }

    private static string Decode(Func<string> get, string file, string path)
    {
        try { return get(); }
        catch (InvalidOperationException e) { throw new InputException(file, path, $"string cannot be decoded: a lone UTF-16 surrogate or an invalid escape ({e.Message})", e); }
    }

    public static bool HasLoneSurrogate(string s, out int at)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) { at = i; return true; }
        }
        at = -1;
        return false;
    }

    /// <summary>A key or value for an error message: at most 40 characters, control characters escaped.</summary>
    public static string Printable(string s)
    {
        var t = s.Length > 40 ? s[..40] + "…" : s;
        return string.Concat(t.Select(c => char.IsControl(c) || char.IsSurrogate(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }

    /// <summary>A System.Text.Json path ("$.stages[3].lr") as a field ("stages[3].lr") under <paramref name="prefix"/>.</summary>
    public static string Field(string prefix, string? jsonPath)
    {
        // System.Text.Json paths look like "$.stages[3].lr" or "$['odd key']".
        string p = jsonPath is null or "$" ? "" : jsonPath.StartsWith("$.", StringComparison.Ordinal) ? jsonPath[2..] : jsonPath.TrimStart('$');
        return prefix.Length == 0 ? p : p.Length == 0 ? prefix : p.StartsWith('[') ? prefix + p : $"{prefix}.{p}";
    }

    /// <summary>A <see cref="JsonException"/>'s message without the path and position it appends (the field says them).</summary>
    public static string Describe(JsonException e)
    {
        int cut = e.Message.IndexOf(" Path: ", StringComparison.Ordinal);
        return (cut >= 0 ? e.Message[..cut] : e.Message).TrimEnd('.', ' ');
    }
}
