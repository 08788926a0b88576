using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.Tasks;

public class TokenizerTests
{
    [Fact]
    public void Vocabulary_classes_are_disjoint_and_cover_576_words()
    {
        var v = Vocabulary.Default;
        Assert.Equal(576, v.Size);
        Assert.Equal(v.Size, v.Words.Distinct().Count());
        TokenRange[] classes = [v.Filler, v.Names, v.Numbers, v.Hex, v.CityIds, v.JobIds];
        Assert.Equal(v.Size - 4 - Vocabulary.TemplateWords.Length, classes.Sum(c => c.Count));
        Assert.Equal("<eos>", v.Word(v.EosId));
        Assert.Equal("42", v.Word(v.Numbers[42]));
    }

    [Fact]
    public void Tokenizer_json_round_trips_and_encodes_text()
    {
        string path = Path.Combine(Path.GetTempPath(), $"kvnb-tok-{Guid.NewGuid():N}.json");
        try
        {
            WordTokenizer.Default.Save(path);
            var t = WordTokenizer.Load(path);
            Assert.Equal(WordTokenizer.Default.VocabSize, t.VocabSize);
            var ids = t.Encode("question the special number for  Zzzz is\n42");
            Assert.Equal(Vocabulary.Default.UnkId, ids[5]);
            Assert.Equal("question the special number for <unk> is 42", t.Decode(ids));
            string json = File.ReadAllText(path);
            Assert.Contains("\"type\": \"WordLevel\"", json);
            Assert.Contains("\"type\": \"WhitespaceSplit\"", json);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Loading_a_bad_tokenizer_names_the_problem()
    {
        string path = Path.Combine(Path.GetTempPath(), $"kvnb-tok-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}");
            Assert.Contains("BPE", Assert.Throws<KvNotebooks.Validation.InputException>(() => WordTokenizer.Load(path)).Message);
            File.WriteAllText(path, "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0, \"b\": 0}, \"unk_token\": \"a\"}}");
            Assert.Contains("id 0", Assert.Throws<KvNotebooks.Validation.InputException>(() => WordTokenizer.Load(path)).Message);
            File.WriteAllText(path, "{not json");
            Assert.Contains("not valid JSON", Assert.Throws<KvNotebooks.Validation.InputException>(() => WordTokenizer.Load(path)).Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Filler_text_is_deterministic_and_uses_only_filler_and_periods()
    {
        var a = FillerText.Generate(new Random(5), 2000);
        Assert.Equal(a, FillerText.Generate(new Random(5), 2000));
        Assert.All(a, t => Assert.True(Vocabulary.Default.Filler.Contains(t) || t == Vocabulary.Default["."]));
        var natural = NaturalText.Generate(3, 1000);
        Assert.Equal(1000, natural.Length);
    }
}
