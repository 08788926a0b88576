using System.Globalization;
using System.Text.Json;

namespace KvNotebooks.Validation;

/// <summary>
/// A value inside a validated JSON document, with its file and path, and typed getters that check the
/// type and the range and raise <see cref="InputException"/> naming both: <c>cfg.json: stages[3].lr: must
/// be a number in (0, 10] (got 1e9)</c>. A missing key gives a field whose <see cref="Exists"/> is false.
/// </summary>
public readonly struct JsonField
{
    public JsonField(JsonElement element, string file, string path = "")
    {
        Element = element;
        File = file;
        Path = path;
    }

    public JsonElement Element { get; }
    public string File { get; }
    public string Path { get; }

    public JsonValueKind Kind => Element.ValueKind;
    /// <summary>The key was present (possibly null).</summary>
    public bool Exists => Element.ValueKind != JsonValueKind.Undefined;
    /// <summary>Absent or JSON null.</summary>
    public bool IsMissing => Element.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null;

    public InputException Error(string rule) => new(File, Path, rule);

    /// <summary>The member <paramref name="key"/> of an object (absent: a field that does not exist).</summary>
    public JsonField this[string key]
    {
        get
        {
            if (Element.ValueKind != JsonValueKind.Object) throw Error($"must be an object{Got()}");
            return new(Element.TryGetProperty(key, out var v) ? v : default, File, InputException.Join(Path, key));
        }
    }

    /// <summary>An object's members in file order.</summary>
    public IEnumerable<(string Key, JsonField Value)> Properties()
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error($"must be an object{Got()}");
        string file = File, path = Path;
        return Element.EnumerateObject().Select(p => (p.Name, new JsonField(p.Value, file, InputException.Join(path, p.Name))));
    }

    /// <summary>An array's items, refusing more than <paramref name="maxLength"/>.</summary>
    public IReadOnlyList<JsonField> Items(int maxLength = int.MaxValue, int minLength = 0)
    {
        if (Element.ValueKind != JsonValueKind.Array) throw Error($"must be a list{Got()}");
        int n = Element.GetArrayLength();
        if (n > maxLength) throw Error($"has {n} items; at most {maxLength} are allowed");
        if (n < minLength) throw Error($"has {n} items; at least {minLength} are needed");
        var list = new JsonField[n];
        int i = 0;
        foreach (var item in Element.EnumerateArray()) { list[i] = new(item, File, InputException.Join(Path, i)); i++; }
        return list;
    }

    /// <summary>Throws when the object has a key outside <paramref name="known"/> (a typo would otherwise be ignored).</summary>
    public void OnlyKeys(params string[] known)
    {
        foreach (var (key, value) in Properties())
            if (Array.IndexOf(known, key) < 0) throw value.Error($"unknown key (expected one of: {string.Join(", ", known)})");
    }

    public string String()
    {
        if (Element.ValueKind != JsonValueKind.String) throw Error($"must be a string{Got()}");
        return Element.GetString()!;
    }

    public string? OptionalString() => IsMissing ? null : String();

    public bool Bool()
    {
        if (Element.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Error($"must be true or false{Got()}");
        return Element.GetBoolean();
    }

    public bool Bool(bool fallback) => IsMissing ? fallback : Bool();

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>]; whole numbers written as 4.0 or 1e3 count
    /// unless <paramref name="plain"/> (for formats whose other readers insist on plain integers, as nbformat's do).</summary>
    public long Long(long min = long.MinValue, long max = long.MaxValue, bool plain = false)
    {
        if (Element.ValueKind != JsonValueKind.Number) throw Error($"must be an integer{Range(min, max)}{Got()}");
        if (!Element.TryGetInt64(out long v))
        {
            if (plain) throw Error($"must be a plain integer (no fraction or exponent){Range(min, max)}{Got()}");
            if (!Element.TryGetDouble(out double d) || !double.IsFinite(d) || d != Math.Floor(d) || Math.Abs(d) >= 9.2e18)
                throw Error($"must be an integer{Range(min, max)}{Got()}");
            v = (long)d;
        }
        if (v < min || v > max) throw Error($"must be an integer{Range(min, max)}{Got()}");
        return v;
    }

    public int Int(int min = int.MinValue, int max = int.MaxValue, bool plain = false) => (int)Long(min, max, plain);

    public int Int(int fallback, int min, int max) => IsMissing ? fallback : Int(min, max);

    /// <summary>A finite number in [<paramref name="min"/>, <paramref name="max"/>] (exclusive bounds when asked).</summary>
    public double Double(double min = double.MinValue, double max = double.MaxValue, bool minExclusive = false, bool maxExclusive = false)
    {
        string range = $" in {(minExclusive ? "(" : "[")}{Num(min)}, {Num(max)}{(maxExclusive ? ")" : "]")}";
        if (Element.ValueKind != JsonValueKind.Number || !Element.TryGetDouble(out double v) || !double.IsFinite(v))
            throw Error($"must be a finite number{range}{Got()}");
        if (v < min || v > max || (minExclusive && v == min) || (maxExclusive && v == max)) throw Error($"must be a number{range}{Got()}");
        return v;
    }

    public double Double(double fallback, double min, double max, bool minExclusive = false) => IsMissing ? fallback : Double(min, max, minExclusive);

    /// <summary>" (got …)" with the raw JSON, shortened.</summary>
    public string Got()
    {
        if (!Exists) return " (missing)";
        string raw = Element.GetRawText();
        return $" (got {StrictJson.Printable(raw)})";
    }

    private static string Range(long min, long max) =>
        (min, max) switch
        {
            (long.MinValue or int.MinValue, long.MaxValue or int.MaxValue) => "",
            (_, long.MaxValue or int.MaxValue) => $" ≥ {min}",
            (long.MinValue, _) => $" ≤ {max}",
            _ => $" in [{min}, {max}]",
        };

    private static string Num(double x) => x == double.MinValue ? "−∞" : x == double.MaxValue ? "∞" : x.ToString("G6", CultureInfo.InvariantCulture);
}
