using System.Text.Json;
using System.Text.Json.Nodes;
using KvNotebooks.Model;

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

    /// <summary>Reads a WordLevel tokenizer.json; other model types are refused with a clear error.</summary>
    public static WordTokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file '{path}' does not exist", path);
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
        var model = root?["model"] as JsonObject ?? throw new InvalidDataException($"{path}: no \"model\" object");
        string type = model["type"]?.GetValue<string>() ?? "";
        if (type != "WordLevel") throw new InvalidDataException($"{path}: tokenizer model type '{type}' is not supported (only WordLevel)");
        var vocab = model["vocab"] as JsonObject ?? throw new InvalidDataException($"{path}: WordLevel model without a \"vocab\" object");
        var words = new string?[vocab.Count];
        foreach (var (word, node) in vocab)
        {
            int id = node?.GetValue<int>() ?? -1;
            if ((uint)id >= (uint)words.Length) throw new InvalidDataException($"{path}: word '{word}' has id {id}, outside [0, {words.Length})");
            if (words[id] is not null) throw new InvalidDataException($"{path}: id {id} is given to both '{words[id]}' and '{word}'");
            words[id] = word;
        }
        string unk = model["unk_token"]?.GetValue<string>() ?? Vocabulary.Unk;
        return new WordTokenizer(words!, unk);
    }

    private static bool IsSpecial(string w) => w.Length > 2 && w[0] == '<' && w[^1] == '>';
}
