namespace KvNotebooks.Tasks;

/// <summary>
/// The small synthetic language every task is written in: a word-level vocabulary of 576 tokens in
/// fixed classes. Filler words make the "natural text" haystack; names are keys, entities and
/// variables; numbers, hex pieces, cities and jobs are values. Built deterministically from code, so
/// the shipped tokenizer.json and this class always agree (a test checks it).
/// </summary>
public sealed class Vocabulary
{
    public const string Pad = "<pad>", Unk = "<unk>", Bos = "<bos>", Eos = "<eos>", Newline = "<nl>";

    /// <summary>Punctuation and template words the task formats use.</summary>
    public static readonly string[] TemplateWords =
    [
        Newline, ":", ";", ",", ".", "?", "=", "{", "}", "[", "]", "<", ">", "|",
        "question", "answer", "the", "special", "number", "numbers", "uuid", "for", "is", "are", "pass", "key",
        "remember", "it", "let", "row", "doc", "lives", "in", "works", "as", "query", "ranking", "input", "label",
        "most", "frequent", "table", "value", "of",
    ];

    public static readonly string[] Cities =
    [
        "Paris", "Lima", "Oslo", "Cairo", "Rome", "Kyoto", "Quito", "Dakar", "Hanoi", "Perth", "Tunis", "Sofia",
        "Minsk", "Riga", "Bern", "Delhi", "Seoul", "Accra", "Doha", "Lagos", "Baku", "Porto", "Nice", "Turin",
        "Basel", "Graz", "Cork", "Bonn", "Lyon", "Malmo", "Split", "Agra",
    ];

    public static readonly string[] Jobs =
    [
        "baker", "farmer", "painter", "singer", "doctor", "pilot", "tailor", "miner", "sailor", "writer", "dancer",
        "hunter", "potter", "weaver", "smith", "cook", "nurse", "judge", "clerk", "guard", "monk", "poet", "chef",
        "vet", "coach", "critic", "chemist", "jester", "herald", "scribe", "ranger", "brewer",
    ];

    public const int FillerCount = 140, NameCount = 128, NumberCount = 100, HexCount = 96;

    private readonly Dictionary<string, int> _ids;

    private Vocabulary()
    {
        var words = new List<string> { Pad, Unk, Bos, Eos };
        words.AddRange(TemplateWords);
        var taken = new HashSet<string>(words, StringComparer.OrdinalIgnoreCase);
        taken.UnionWith(Cities); taken.UnionWith(Jobs);
        var rng = new Random(20250620);
        Filler = Range(words, PseudoWords(rng, FillerCount, taken, capitalised: false));
        Names = Range(words, PseudoWords(rng, NameCount, taken, capitalised: true));
        Numbers = Range(words, Enumerable.Range(0, NumberCount).Select(i => i.ToString()));
        Hex = Range(words, Enumerable.Range(0, HexCount).Select(i => $"{(char)('a' + i / 16)}{"0123456789abcdef"[i % 16]}"));
        CityIds = Range(words, Cities);
        JobIds = Range(words, Jobs);
        Words = words.ToArray();
        _ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Words.Count; i++)
            if (!_ids.TryAdd(Words[i], i)) throw new InvalidOperationException($"duplicate word '{Words[i]}' in the vocabulary");
    }

    /// <summary>The one vocabulary of the task suite.</summary>
    public static Vocabulary Default { get; } = new();

    /// <summary>Every token, index = id.</summary>
    public IReadOnlyList<string> Words { get; }
    public int Size => Words.Count;
    /// <summary>Id ranges of the token classes.</summary>
    public TokenRange Filler { get; }
    public TokenRange Names { get; }
    public TokenRange Numbers { get; }
    public TokenRange Hex { get; }
    public TokenRange CityIds { get; }
    public TokenRange JobIds { get; }

    public int PadId => 0;
    public int UnkId => 1;
    public int BosId => 2;
    public int EosId => 3;

    /// <summary>Id of a word; throws naming the word when it is not in the vocabulary.</summary>
    public int this[string word] => _ids.TryGetValue(word, out int id) ? id
        : throw new ArgumentException($"'{word}' is not a word of the task vocabulary");

    public bool TryGetId(string word, out int id) => _ids.TryGetValue(word, out id);

    public string Word(int id) => (uint)id < (uint)Words.Count ? Words[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside [0, {Words.Count})");

    /// <summary>Ids of space-separated words ("the special number for").</summary>
    public int[] Ids(string words) => words.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => this[w]).ToArray();

    /// <summary>Readable text of ids (words joined by spaces).</summary>
    public string Text(IEnumerable<int> ids) => string.Join(' ', ids.Select(Word));

    private static TokenRange Range(List<string> words, IEnumerable<string> add)
    {
        int start = words.Count;
        words.AddRange(add);
        return new TokenRange(start, words.Count - start);
    }

    /// <summary>Distinct pronounceable words (consonant–vowel syllables), deterministic for a seeded rng.</summary>
    private static List<string> PseudoWords(Random rng, int count, HashSet<string> taken, bool capitalised)
    {
        const string consonants = "bdfgklmnprstvz", vowels = "aeiou";
        var list = new List<string>();
        while (list.Count < count)
        {
            int syllables = rng.Next(2) == 0 ? 2 : 3;
            var chars = new char[syllables * 2];
            for (int s = 0; s < syllables; s++)
            {
                chars[2 * s] = consonants[rng.Next(consonants.Length)];
                chars[2 * s + 1] = vowels[rng.Next(vowels.Length)];
            }
            if (capitalised) chars[0] = char.ToUpperInvariant(chars[0]);
            string w = new(chars);
            if (taken.Add(w)) list.Add(w);
        }
        return list;
    }
}

/// <summary>A contiguous block of token ids [Start, Start + Count).</summary>
public readonly record struct TokenRange(int Start, int Count)
{
    public int this[int i] => (uint)i < (uint)Count ? Start + i : throw new ArgumentOutOfRangeException(nameof(i));
    public bool Contains(int id) => id >= Start && id < Start + Count;
    /// <summary>A uniformly random member.</summary>
    public int Sample(Random rng) => Start + rng.Next(Count);
    /// <summary><paramref name="k"/> distinct members in random order.</summary>
    public int[] SampleDistinct(Random rng, int k)
    {
        if (k > Count) throw new ArgumentOutOfRangeException(nameof(k), k, $"cannot draw {k} distinct tokens from a class of {Count}");
        var all = Enumerable.Range(Start, Count).ToArray();
        for (int i = 0; i < k; i++) { int j = i + rng.Next(Count - i); (all[i], all[j]) = (all[j], all[i]); }
        return all[..k];
    }
}
