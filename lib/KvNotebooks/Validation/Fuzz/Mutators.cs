using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace KvNotebooks.Validation.Fuzz;

/// <summary>
/// Our mutators: byte-level damage for any file, structure-aware damage for JSON (a value of the wrong type,
/// huge and negative numbers, duplicate keys, deep nesting, lone surrogates), and adapters that apply them
/// inside a container (a safetensors header, a gzip stream, one line of a text file).
/// </summary>
public static class Mutators
{
    private static readonly byte[][] BadUtf8 = [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80]];

    /// <summary>Damage that applies to any bytes.</summary>
    public static IReadOnlyList<Mutator> Bytes { get; } =
    [
        new("flip-bits", (b, r) =>
        {
            if (b.Length == 0) return null;
            var c = (byte[])b.Clone();
            for (int i = 0, n = 1 + r.Next(8); i < n; i++) c[r.Next(c.Length)] ^= (byte)(1 << r.Next(8));
            return c;
        }),
        new("random-bytes", (b, r) =>
        {
            if (b.Length == 0) return null;
            var c = (byte[])b.Clone();
            for (int i = 0, n = 1 + r.Next(16); i < n; i++) c[r.Next(c.Length)] = (byte)r.Next(256);
            return c;
        }),
        new("truncate", (b, r) => b.Length == 0 ? null : b[..r.Next(b.Length)]),
        new("empty", (b, _) => b.Length == 0 ? null : []),
        new("insert-bytes", (b, r) =>
        {
            var ins = new byte[1 + r.Next(32)];
            r.NextBytes(ins);
            int at = r.Next(b.Length + 1);
            return [.. b.AsSpan(0, at), .. ins, .. b.AsSpan(at)];
        }),
        new("delete-range", (b, r) =>
        {
            if (b.Length < 2) return null;
            int at = r.Next(b.Length), n = 1 + r.Next(Math.Min(64, b.Length - at));
            return [.. b.AsSpan(0, at), .. b.AsSpan(at + n)];
        }),
        new("duplicate-range", (b, r) =>
        {
            if (b.Length < 2) return null;
            int at = r.Next(b.Length), n = 1 + r.Next(Math.Min(256, b.Length - at)), to = r.Next(b.Length + 1);
            return [.. b.AsSpan(0, to), .. b.AsSpan(at, n), .. b.AsSpan(to)];
        }),
        new("invalid-utf8", (b, r) =>
        {
            int at = r.Next(b.Length + 1);
            return [.. b.AsSpan(0, at), .. BadUtf8[r.Next(BadUtf8.Length)], .. b.AsSpan(at)];
        }),
    ];

    // ---- JSON ----

    /// <summary>Values of the wrong type, out of range, huge, negative, non-finite, nested, or undecodable.</summary>
    private static readonly string[] HostileValues =
    [
        "null", "true", "false", "\"4\"", "\"\"", "\" \"", "\"a b\"", "-1", "0", "1", "4.0", "0.5", "-0.0", "1e9", "-1e9", "2147483647", "2147483648",
        "-2147483649", "1099511627776", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1e308", "-1e308", "1e999",
        "1e-320", "NaN", "Infinity", "[]", "{}", "[null]", "[[]]", "{\"\":null}", "[1,2,3]", "\"\\ud800\"", "\"\\udc00x\"", "\"\\u0000\"",
        "\"\\ud83d\\ude00\"", "[\"4\"]", "[-1]", "[1e9]",
    ];

    private static readonly string[] EdgeNumbers =
        ["-1", "0", "1", "2", "3", "-2147483648", "2147483647", "2147483648", "4294967296", "1099511627776", "1e9", "1e15", "1e300", "-1e300",
         "0.5", "1.5", "-0.5", "1e-300", "9.999999999999999e22", "123456789012345678901234567890"];

    /// <summary>Damage that knows JSON's structure (applied to the text; unparseable input gives null).</summary>
    public static IReadOnlyList<Mutator> Json { get; } =
    [
        new("json-hostile-value", (b, r) => Splice(b, r, Values(b), _ => HostileValues[r.Next(HostileValues.Length)])),
        new("json-edge-number", (b, r) => Splice(b, r, Values(b).Where(t => t.Kind == JsonTokenType.Number).ToList(), text =>
            r.Next(4) == 0 && !text.StartsWith('-') ? "-" + text : r.Next(3) == 0 ? text + "000000000" : EdgeNumbers[r.Next(EdgeNumbers.Length)])),
        new("json-edge-string", (b, r) => Splice(b, r, Values(b).Where(t => t.Kind == JsonTokenType.String).ToList(), text =>
            r.Next(6) switch
            {
                0 => "\"\"",
                1 => "\"\\ud800\"",
                2 => text.Insert(1, " "),
                3 => "\"" + new string('x', 1 + r.Next(100_000)) + "\"",
                4 => text.Insert(1, "\\u0000"),
                _ => text.Length > 2 ? "\"" + text[2..] : "\"x\"",
            })),
        new("json-duplicate-key", (b, r) =>
        {
            var members = Members(b);
            if (members.Count == 0) return null;
            var (nameStart, valueEnd) = members[r.Next(members.Count)];
            var pair = b.AsSpan(nameStart, valueEnd - nameStart);
            return [.. b.AsSpan(0, nameStart), .. pair, (byte)',', .. pair, .. b.AsSpan(valueEnd)];
        }),
        new("json-rename-key", (b, r) =>
        {
            var names = Tokens(b).Where(t => t.Kind == JsonTokenType.PropertyName).ToList();
            return Splice(b, r, names, text => r.Next(3) switch { 0 => "\"\"", 1 => "\"" + text.Trim('"').ToUpperInvariant() + "\"", _ => "\"x_" + text.Trim('"') + "\"" });
        }),
        new("json-delete-member", (b, r) =>
        {
            var members = Members(b);
            if (members.Count == 0) return null;
            var (start, end) = members[r.Next(members.Count)];
            // Take the comma after the member, or else the one before it.
            int e = end;
            while (e < b.Length && b[e] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') e++;
            if (e < b.Length && b[e] == ',') return [.. b.AsSpan(0, start), .. b.AsSpan(e + 1)];
            int s = start - 1;
            while (s >= 0 && b[s] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t') s--;
            if (s >= 0 && b[s] == ',') return [.. b.AsSpan(0, s), .. b.AsSpan(end)];
            return [.. b.AsSpan(0, start), .. b.AsSpan(end)];
        }),
        new("json-deep-nesting", (b, r) =>
        {
            int depth = r.Next(3) switch { 0 => 10 + r.Next(60), 1 => 100 + r.Next(1000), _ => 100_000 };
            bool objects = r.Next(2) == 0;
            var sb = new StringBuilder();
            for (int i = 0; i < depth; i++) sb.Append(objects ? "{\"a\":" : "[");
            sb.Append('1');
            for (int i = 0; i < depth; i++) sb.Append(objects ? '}' : ']');
            string nested = sb.ToString();
            return Splice(b, r, Values(b), _ => nested);
        }),
        new("json-wrap", (b, r) => Splice(b, r, Values(b), text => r.Next(2) == 0 ? "[" + text + "]" : "{\"v\":" + text + "}")),
        new("json-array-edit", (b, r) =>
        {
            var arrays = Values(b).Where(t => t.Kind == JsonTokenType.StartArray).ToList();
            return Splice(b, r, arrays, text =>
            {
                using var doc = JsonDocument.Parse(text, LenientDocument);
                var items = doc.RootElement.EnumerateArray().Select(e => e.GetRawText()).ToList();
                switch (r.Next(4))
                {
                    case 0: return "[]";
                    case 1: if (items.Count > 0) items.Add(items[r.Next(items.Count)]); break;
                    case 2: if (items.Count > 0) items.RemoveAt(r.Next(items.Count)); break;
                    default: for (int i = 0, n = 1 + r.Next(2000); i < n; i++) items.Add(items.Count > 0 ? items[0] : "0"); break;
                }
                return "[" + string.Join(",", items) + "]";
            });
        }),
    ];

    private static readonly JsonReaderOptions LenientReader = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 512 };
    private static readonly JsonDocumentOptions LenientDocument = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 512 };

    private readonly record struct Token(int Start, int End, JsonTokenType Kind);

    /// <summary>Every token of the document: property names, primitive values, and containers (spanning to their end).</summary>
    private static List<Token> Tokens(byte[] b)
    {
        var list = new List<Token>();
        var open = new Stack<(int Start, int Index)>();
        try
        {
            var reader = new Utf8JsonReader(b, LenientReader);
            while (reader.Read())
            {
                int start = (int)reader.TokenStartIndex;
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        open.Push((start, list.Count));
                        list.Add(new Token(start, -1, reader.TokenType));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        var (s, i) = open.Pop();
                        list[i] = list[i] with { End = (int)reader.BytesConsumed };
                        break;
                    default:
                        list.Add(new Token(start, (int)reader.BytesConsumed, reader.TokenType));
                        break;
                }
            }
        }
        catch (JsonException) { return []; }
        return list.Where(t => t.End > t.Start).ToList();
    }

    private static List<Token> Values(byte[] b) => Tokens(b).Where(t => t.Kind != JsonTokenType.PropertyName).ToList();

    /// <summary>(start of the name, end of the value) of every object member.</summary>
    private static List<(int Start, int End)> Members(byte[] b)
    {
        var tokens = Tokens(b);
        var list = new List<(int, int)>();
        for (int i = 0; i + 1 < tokens.Count; i++)
            if (tokens[i].Kind == JsonTokenType.PropertyName) list.Add((tokens[i].Start, tokens[i + 1].End));
        return list;
    }

    /// <summary>Replaces one random token's text with <paramref name="replace"/>(its text).</summary>
    private static byte[]? Splice(byte[] b, Random r, List<Token> tokens, Func<string, string> replace)
    {
        if (tokens.Count == 0) return null;
        var t = tokens[r.Next(tokens.Count)];
        string text = Encoding.UTF8.GetString(b, t.Start, t.End - t.Start);
        return [.. b.AsSpan(0, t.Start), .. Encoding.UTF8.GetBytes(replace(text)), .. b.AsSpan(t.End)];
    }

    // ---- adapters ----

    /// <summary>Applies <paramref name="inner"/> to the safetensors JSON header and rewrites the length prefix to match.</summary>
    public static Mutator InSafetensorsHeader(Mutator inner) => new("header:" + inner.Name, (b, r) =>
    {
        if (b.Length < 8) return null;
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(b);
        if (n > (ulong)(b.Length - 8)) return null;
        var header = inner.Apply(b[8..(8 + (int)n)], r);
        if (header is null) return null;
        var len = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        return [.. len, .. header, .. b.AsSpan(8 + (int)n)];
    });

    /// <summary>Applies <paramref name="inner"/> to the decompressed text of a gzip file and compresses again.</summary>
    public static Mutator InGzip(Mutator inner) => new("gzip:" + inner.Name, (b, r) =>
    {
        byte[] plain;
        try
        {
            using var gz = new GZipStream(new MemoryStream(b), CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            plain = ms.ToArray();
        }
        catch (InvalidDataException) { return null; }
        var damaged = inner.Apply(plain, r);
        if (damaged is null) return null;
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(damaged);
        return output.ToArray();
    });

    /// <summary>Applies <paramref name="inner"/> to one random line of a text file (lines split on '\n').</summary>
    public static Mutator InLine(Mutator inner, Func<string, bool>? which = null) => new("line:" + inner.Name, (b, r) =>
    {
        var lines = SplitLines(b);
        var candidates = Enumerable.Range(0, lines.Count).Where(i => lines[i].Length > 0 && (which is null || which(Encoding.UTF8.GetString(lines[i])))).ToList();
        if (candidates.Count == 0) return null;
        int at = candidates[r.Next(candidates.Count)];
        var damaged = inner.Apply(lines[at], r);
        if (damaged is null) return null;
        lines[at] = damaged;
        return JoinLines(lines);
    });

    /// <summary>Whole-line damage for line formats: duplicate, delete, swap, blank, an extra line of <paramref name="extra"/>, a huge line.</summary>
    public static IReadOnlyList<Mutator> Lines(params string[] extra) =>
    [
        new("line-duplicate", (b, r) => EditLines(b, lines => { if (lines.Count == 0) return false; int i = r.Next(lines.Count); lines.Insert(i, lines[i]); return true; })),
        new("line-delete", (b, r) => EditLines(b, lines => { if (lines.Count == 0) return false; lines.RemoveAt(r.Next(lines.Count)); return true; })),
        new("line-swap", (b, r) => EditLines(b, lines =>
        {
            if (lines.Count < 2) return false;
            int i = r.Next(lines.Count), j = r.Next(lines.Count);
            (lines[i], lines[j]) = (lines[j], lines[i]);
            return true;
        })),
        new("line-insert", (b, r) => EditLines(b, lines =>
        {
            string[] choices = [.. extra, "", " ", "{}", "[]", "null", "\r"];
            lines.Insert(r.Next(lines.Count + 1), Encoding.UTF8.GetBytes(choices[r.Next(choices.Length)]));
            return true;
        })),
        new("line-huge", (b, r) => EditLines(b, lines =>
        {
            // Mostly moderate; one in ten beyond the loaders' line caps (a few tens of MB).
            int n = r.Next(10) == 0 ? 20_000_000 : 1 + r.Next(200_000);
            lines.Insert(r.Next(lines.Count + 1), Encoding.UTF8.GetBytes(new string((char)('0' + r.Next(10)), n)));
            return true;
        })),
    ];

    private static byte[]? EditLines(byte[] b, Func<List<byte[]>, bool> edit)
    {
        var lines = SplitLines(b);
        return edit(lines) ? JoinLines(lines) : null;
    }

    private static List<byte[]> SplitLines(byte[] b)
    {
        var lines = new List<byte[]>();
        int start = 0;
        for (int i = 0; i <= b.Length; i++)
            if (i == b.Length || b[i] == '\n')
            {
                if (i < b.Length || i > start) lines.Add(b[start..i]);
                start = i + 1;
            }
        return lines;
    }

    private static byte[] JoinLines(List<byte[]> lines)
    {
        var ms = new MemoryStream();
        foreach (var l in lines) { ms.Write(l); ms.WriteByte((byte)'\n'); }
        return ms.ToArray();
    }

    /// <summary>Overwrites 4-byte little-endian integers at <paramref name="offsets"/>(bytes) with edge values.</summary>
    public static Mutator Int32Fields(string name, Func<byte[], IReadOnlyList<int>> offsets, Func<byte[], int, int[]>? extraValues = null) => new(name, (b, r) =>
    {
        var at = offsets(b);
        if (at.Count == 0) return null;
        int o = at[r.Next(at.Count)];
        if (o + 4 > b.Length) return null;
        int old = BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(o));
        int[] values = [-1, 0, 1, old + 1, old - 1, old * 2, int.MaxValue, int.MinValue, 1 << 30, 0x7FFFFFF0, .. extraValues?.Invoke(b, old) ?? []];
        var c = (byte[])b.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(c.AsSpan(o), values[r.Next(values.Length)]);
        return c;
    });

    /// <summary>Writes NaN or ±Inf float32 bit patterns at random 4-byte-aligned offsets from <paramref name="start"/>(bytes).</summary>
    public static Mutator NonFiniteFloats(Func<byte[], int> start, int elementSize = 4) => new("non-finite", (b, r) =>
    {
        int s = Math.Clamp(start(b), 0, b.Length);
        int n = (b.Length - s) / elementSize;
        if (n <= 0) return null;
        var c = (byte[])b.Clone();
        int at = s + r.Next(n) * elementSize;
        if (elementSize == 4)
            BinaryPrimitives.WriteSingleLittleEndian(c.AsSpan(at), r.Next(3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => float.NegativeInfinity });
        else
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(at), (ushort)(r.Next(2) == 0 ? 0x7FC0 : 0x7F80));
        return c;
    });
}
