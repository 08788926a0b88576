using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Model;
using KvNotebooks.Validation;

namespace KvNotebooks.Tasks;

/// <summary>
/// A word-level tokenizer in Hugging Face <c>tokenizer.json</c> form (model type "WordLevel",
/// pre-tokenizer "WhitespaceSplit"): text splits on whitespace, each word is one id, unknown words
/// map to &lt;unk&gt;. The same file opens in the <c>tokenizers</c> library and in a text editor.
/// </summary>
public sealed class WordTokenizer
{
    private readonly Dictionary<string, int> _ids;
    private readonly string[] _words;

    public WordTokenizer(IReadOnlyList<string> words, string unk = Vocabulary.Unk)
    {
        _words = words.ToArray();
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _words.Length; i++)
            if (!_ids.TryAdd(_words[i], i)) throw new InvalidDataException($"tokenizer: word '{_words[i]}' appears twice");
        if (!_ids.TryGetValue(unk, out int u)) throw new InvalidDataException($"tokenizer: the unknown token '{unk}' is not in the vocabulary");
        UnkId = u;
    }

    /// <summary>The task suite's tokenizer.</summary>
    public static WordTokenizer Default { get; } = new(Vocabulary.Default.Words);

    public int VocabSize => _words.Length;
    public int UnkId { get; }

    public int[] Encode(string text) =>
        text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(w => _ids.TryGetValue(w, out int id) ? id : UnkId).ToArray();

    public string Decode(IEnumerable<int> ids) =>
        string.Join(' ', ids.Select(id => (uint)id < (uint)_words.Length ? _words[id]
            : throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id outside [0, {_words.Length})")));

    public string Word(int id) => _words[id];

    /// <summary>Writes tokenizer.json (atomically). Special tokens (&lt;…&gt; words) are listed as added tokens.</summary>
    public void Save(string path)
    {
        var vocab = new JsonObject();
        for (int i = 0; i < _words.Length; i++) vocab[_words[i]] = i;
        var added = new JsonArray();
        for (int i = 0; i < _words.Length; i++)
            if (IsSpecial(_words[i]))
                added.Add(new JsonObject
                {
                    ["id"] = i, ["content"] = _words[i], ["single_word"] = false, ["lstrip"] = false,
                    ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
                });
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "WhitespaceSplit" },
            ["post_processor"] = null,
            ["decoder"] = null,
            ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = vocab, ["unk_token"] = _words[UnkId] },
        };
        AtomicFile.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>tokenizer.json files larger than this are refused before reading; vocabularies larger than
    /// <see cref="MaxVocab"/> too.</summary>
    public const long MaxFileBytes = 256 << 20;
    public const int MaxVocab = 1 << 24;

    /// <summary>Reads a WordLevel tokenizer.json; other model types are refused with a clear error. The vocabulary
    /// must give each id in [0, n) to exactly one word, words must be non-empty without whitespace (a
    /// whitespace-split text can never produce another), and the unknown token must be one of them.</summary>
    public static WordTokenizer Load(string path)
    {
        var bytes = InputFile.ReadAllBytes(path, "tokenizer", MaxFileBytes);
        using var doc = StrictJson.Parse(bytes, path);
        var root = new JsonField(doc.RootElement, path);
        var model = root["model"];
        if (model.Kind != JsonValueKind.Object) throw model.Error($"no \"model\" object{model.Got()}");
        string type = model["type"].OptionalString() ?? "";
        if (type != "WordLevel") throw model["type"].Error($"tokenizer model type '{StrictJson.Printable(type)}' is not supported (only WordLevel)");
        var vocab = model["vocab"];
        if (vocab.Kind != JsonValueKind.Object) throw vocab.Error($"WordLevel model without a \"vocab\" object{vocab.Got()}");
        var entries = vocab.Properties().ToList();
        if (entries.Count > MaxVocab) throw vocab.Error($"{entries.Count} words; at most {MaxVocab}");
        var words = new string?[entries.Count];
        foreach (var (word, node) in entries)
        {
            if (word.Length == 0) throw node.Error("the empty string is not a word");
            if (word.Any(char.IsWhiteSpace)) throw node.Error($"word '{StrictJson.Printable(word)}' holds whitespace, which the WhitespaceSplit pre-tokenizer never yields");
            int id = node.Int(0, words.Length - 1);
            if (words[id] is not null) throw node.Error($"id {id} is given to both '{StrictJson.Printable(words[id]!)}' and '{StrictJson.Printable(word)}'");
            words[id] = word;
        }
        string unk = model["unk_token"].OptionalString() ?? Vocabulary.Unk;
        if (Array.IndexOf(words, unk) < 0) throw model["unk_token"].Error($"the unknown token '{StrictJson.Printable(unk)}' is not in the vocabulary");
        return new WordTokenizer(words!, unk);
    }

    private static bool IsSpecial(string w) => w.Length > 2 && w[0] == '<' && w[^1] == '>';
}
