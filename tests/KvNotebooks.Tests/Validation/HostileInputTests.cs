using System.IO.Compression;
using System.Text;
using KvNotebooks.Evaluation;
using KvNotebooks.Model;
using KvNotebooks.Notebooks;
using KvNotebooks.Tasks;
using KvNotebooks.Training;
using KvNotebooks.Training.Pretraining;
using KvNotebooks.Validation;
using KvNotebooks.Validation.Fuzz;

namespace KvNotebooks.Tests.Validation;

/// <summary>
/// One regression case per distinct defect the fuzz campaigns found (issue 30 and ours): each input is small and
/// inline, and each assertion names the file and the field the error must carry.
/// </summary>
public sealed class HostileInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvnb-hostile").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static InputException Fails(Action load, string field, string rule)
    {
        var e = Assert.Throws<InputException>(load);
        Assert.Equal(field, e.Field);
        Assert.Contains(rule, e.Rule);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    private const string Tiny = """
        "vocab_size": 16, "hidden_size": 8, "intermediate_size": 12, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4
        """;

    private string TinyModel(LlamaConfig? config = null)
    {
        string dir = Path.Combine(_dir, "model-" + Guid.NewGuid().ToString("N")[..8]);
        LlamaWeights.Random(config ?? LibraryFuzzFormats.TinyConfig, seed: 1).Save(dir);
        return dir;
    }

    // ---- config.json ----

    [Theory]
    [InlineData("\"num_hidden_layers\": 1000000000", "num_hidden_layers", "[1, 1024]")]           // built shapes forever, 1.5 GB / 5 s
    [InlineData("\"max_position_embeddings\": 0", "max_position_embeddings", "[1, ")]
    [InlineData("\"max_position_embeddings\": -5", "max_position_embeddings", "[1, ")]
    [InlineData("\"bos_token_id\": 1099511627776", "bos_token_id", "in [0, 15]")]                 // 2^40 was cut to 32 bits
    [InlineData("\"eos_token_id\": [2, 99]", "eos_token_id[1]", "in [0, 15]")]
    [InlineData("\"model_type\": 5", "model_type", "must be a string")]                           // InvalidOperationException from GetValue
    [InlineData("\"architectures\": [null]", "architectures[0]", "must be a string")]             // a stack trace from kvnb logits
    [InlineData("\"rms_norm_eps\": \"1e-5\"", "rms_norm_eps", "finite number")]
    [InlineData("\"rope_theta\": 1e999", "rope_theta", "finite number")]
    [InlineData("\"tie_word_embeddings\": 1", "tie_word_embeddings", "true or false")]
    [InlineData("\"rope_scaling\": [1]", "rope_scaling", "object or null")]
    public void Config_values_out_of_type_or_range_name_their_key(string extra, string field, string rule)
    {
        string layers = extra.Contains("num_hidden_layers") ? "" : ", \"num_hidden_layers\": 2";
        string path = Write("config.json", "{" + Tiny + layers + ", " + extra + "}");
        Fails(() => LlamaConfig.Load(path), field, rule);
    }

    [Fact]
    public void Config_duplicate_keys_invalid_utf8_and_lone_surrogates_are_refused()
    {
        Fails(() => LlamaConfig.Load(Write("dup.json", "{" + Tiny + ", \"num_hidden_layers\": 2, \"hidden_size\": 16}")), "hidden_size", "duplicate key");   // ArgumentException before
        Fails(() => LlamaConfig.Load(Write("utf.json", [.. Encoding.UTF8.GetBytes("{\"model_type\": \"ll"), 0xFF, .. Encoding.UTF8.GetBytes("ama\", " + Tiny + "}")])), "", "invalid UTF-8 at byte 18");
        Fails(() => LlamaConfig.Load(Write("sur.json", "{\"model_type\": \"\\ud800\", " + Tiny + "}")), "model_type", "lone UTF-16 surrogate");
        Fails(() => LlamaConfig.Load(Write("deep.json", new string('[', 100_000) + new string(']', 100_000))), "", "maximum configured depth");
    }

    [Fact]
    public void Head_sizes_that_do_not_divide_or_overflow_are_refused()
    {
        // hidden 10 over 4 heads was rounded down to a head size of 2
        Fails(() => LlamaConfig.FromJson("""{"vocab_size": 16, "hidden_size": 10, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4}""", "c.json"),
              "head_dim", "not a multiple");
        // 4096 heads × head size 65536 × hidden 65536 overflowed int products
        var e = Assert.Throws<InputException>(() => LlamaConfig.FromJson("""{"vocab_size": 16, "hidden_size": 65536, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4096, "head_dim": 65536}""", "c.json"));
        Assert.Contains("exceeds one array's limit", e.Rule);
    }

    // ---- config against the tensors ----

    [Fact]
    public void A_config_with_fewer_layers_than_the_weights_is_refused()
    {
        string dir = TinyModel();
        (LibraryFuzzFormats.TinyConfig with { NumLayers = 1 }).Save(Path.Combine(dir, "config.json"));
        var e = Fails(() => LlamaWeights.Load(dir), "header.model.layers.1.input_layernorm.weight", "the config does not use this tensor");
        Assert.EndsWith("model.safetensors", e.File);
    }

    [Fact]
    public void A_tied_lm_head_must_equal_the_embedding()
    {
        string dir = TinyModel();   // untied: lm_head.weight is a separate random matrix
        (LibraryFuzzFormats.TinyConfig with { TieWordEmbeddings = true }).Save(Path.Combine(dir, "config.json"));
        Fails(() => LlamaWeights.Load(dir), "header.lm_head.weight", "differs from model.embed_tokens.weight");
        // the same matrix twice is fine
        var w = LlamaWeights.Random(LibraryFuzzFormats.TinyConfig with { TieWordEmbeddings = true }, seed: 1);
        string tied = Path.Combine(_dir, "tied");
        Directory.CreateDirectory(tied);
        Safetensors.Write(Path.Combine(tied, "model.safetensors"), [.. w.NamedTensors(), ("lm_head.weight", [16, 8], w.Embedding)], SafetensorsDtype.F32);
        w.Config.Save(Path.Combine(tied, "config.json"));
        Assert.Equal(w.Embedding, LlamaWeights.Load(tied).LmHead);
    }

    [Fact]
    public void Nan_weights_are_refused_unless_allowed()
    {
        var w = LlamaWeights.Random(LibraryFuzzFormats.TinyConfig, seed: 1);
        w.Layers[1].Wq[3] = float.NaN;
        string dir = Path.Combine(_dir, "nan");
        w.Save(dir);
        Fails(() => LlamaWeights.Load(dir), "model.layers.1.self_attn.q_proj.weight", "1 of 64 values are NaN or ±Inf");
        using (NonFinite.Allow()) Assert.True(float.IsNaN(LlamaWeights.Load(dir).Layers[1].Wq[3]));
    }

    [Fact]
    public void Safetensors_header_with_a_0xFF_byte_is_invalid_utf8()
    {
        string dir = TinyModel();
        string path = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        bytes[8 + 3] = 0xFF;   // "Cannot transcode invalid UTF-8" before
        File.WriteAllBytes(path, bytes);
        Fails(() => SafetensorsFile.Open(path), "header", "invalid UTF-8 at byte 3");
    }

    [Fact]
    public void A_folder_where_a_file_belongs_is_not_reported_missing()
    {
        string dir = TinyModel();
        File.Delete(Path.Combine(dir, "config.json"));
        Directory.CreateDirectory(Path.Combine(dir, "config.json"));
        Assert.Contains("is a folder", Assert.Throws<InputException>(() => LlamaWeights.Load(dir)).Message);
    }

    // ---- training config ----

    private const string Model = """
        "model": {"vocab_size": 576, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 4096}
        """;

    [Theory]
    [InlineData("""{"length": 128, "steps": 2, "lr": 0.1, "questions": {"niah_mk": 2147483647}}""", "stages[0].questions.niah_mk", "≤ 1024")]   // OOM during validation
    [InlineData("""{"length": 128, "steps": 2, "lr": 0.1, "tasks": {"niah_mk": 1, "rag": -1}}""", "stages[0].tasks.rag", "finite number ≥ 0")]
    [InlineData("""{"length": 128, "steps": 2, "lr": 1e9}""", "stages[0].lr", "(0, 10]")]
    [InlineData("""{"length": 128, "steps": 2, "lr": 0.1, "end_lr": -1}""", "stages[0].end_lr", "[0, 10]")]
    [InlineData("""{"length": 128, "steps": 2147483647, "lr": 0.1}, {"length": 128, "steps": 2, "lr": 0.1}""", "stages[1].steps", "more than")]
    [InlineData("""{"length": 4000, "batch": 4096, "steps": 2, "lr": 0.1}""", "stages[0].batch", "tokens per step")]
    [InlineData("""null""", "stages[0]", "not null")]
    public void Training_stages_out_of_range_name_their_field(string stages, string field, string rule)
    {
        var e = Assert.Throws<InputException>(() => PretrainConfig.Parse("{" + Model + ", \"stages\": [" + stages + "]}", "t.json"));
        Assert.Equal(("t.json", field), (e.File, e.Field));
        Assert.Contains(rule, e.Rule);
    }

    [Theory]
    [InlineData("\"stages\": null", "stages", "list of stages")]                                   // a stack trace from kvnb train
    [InlineData("\"init_std\": 1e39, \"stages\": []", "init_std", "finite")]                         // float overflow to ∞
    [InlineData("\"threads\": 0, \"stages\": []", "threads", "[1, 1024]")]
    [InlineData("\"stages\": [], \"stages\": []", "stages", "duplicate key")]
    [InlineData("\"stages\": [{\"length\": \"128\"}]", "stages[0].length", "could not be converted")]
    public void Training_config_fields_name_themselves(string rest, string field, string rule)
    {
        var e = Assert.Throws<InputException>(() => PretrainConfig.Parse("{" + Model + ", " + rest + "}", "t.json"));
        Assert.Equal(field, e.Field);
        Assert.Contains(rule, e.Message);
    }

    [Fact]
    public void The_model_inside_a_training_config_is_named_by_its_path()
    {
        var e = Assert.Throws<InputException>(() => PretrainConfig.Parse("""{"model": {"vocab_size": "576", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4}, "stages": []}""", "t.json"));
        Assert.Equal("model.vocab_size", e.Field);
    }

    // ---- checkpoints ----

    private static AdamW Optimizer(int seed) =>
        new(new TrainableLlama(LlamaWeights.Random(LibraryFuzzFormats.TinyConfig, seed)).Parameters, AdamW.DefaultGroups(1e-3));

    private string Checkpoint(out AdamW saved)
    {
        saved = Optimizer(1);
        saved.StepCount = 5;
        string path = Path.Combine(_dir, "ckpt.bin");
        KvNotebooks.Training.Checkpoint.Save(path, saved, new Dictionary<string, float[]> { ["gates"] = [1, 2] });
        return path;
    }

    [Fact]
    public void A_huge_array_length_is_checked_against_the_bytes_left_before_allocating()
    {
        string path = Checkpoint(out _);
        var bytes = File.ReadAllBytes(path);
        // the extra array's length field (just before its 2 floats and the end marker) set to 2^30: 4 GB were allocated
        int at = bytes.Length - 10 - 8 - 4;
        BitConverter.TryWriteBytes(bytes.AsSpan(at, 4), 1 << 30);
        File.WriteAllBytes(path, bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InputException>(() => KvNotebooks.Training.Checkpoint.Load(path, Optimizer(2)));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20);
        Assert.Equal("extras[0].values", e.Field);
        Assert.Contains("truncated", e.Rule);
    }

    [Fact]
    public void A_truncated_or_corrupt_checkpoint_is_typed_and_changes_nothing()
    {
        string path = Checkpoint(out var saved);
        var full = File.ReadAllBytes(path);
        var target = Optimizer(2);
        var gates = new float[2];
        var before = target.Parameters.Select(p => (float[])p.Value.Clone()).ToList();
        foreach (int cut in new[] { 3, 20, full.Length / 2, full.Length - 5 })   // EndOfStreamException before
        {
            File.WriteAllBytes(path, full[..cut]);
            Assert.Throws<InputException>(() => KvNotebooks.Training.Checkpoint.Load(path, target, new Dictionary<string, float[]> { ["gates"] = gates }));
            // all or nothing: a failed load leaves the optimizer's parameters untouched (240 partial overwrites before)
            for (int i = 0; i < before.Count; i++) Assert.Equal(before[i], target.Parameters[i].Value);
            Assert.Equal(0, target.StepCount);
            Assert.Equal([0f, 0f], gates);
        }
        var corrupt = (byte[])full.Clone();
        corrupt[0] = 0xC8;   // the magic's 7-bit length prefix now says "more bytes follow" (OverflowException / FormatException before)
        File.WriteAllBytes(path, corrupt);
        Assert.Equal("header.magic", Assert.Throws<InputException>(() => KvNotebooks.Training.Checkpoint.Load(path, target)).Field);
        File.WriteAllBytes(path, full);
        KvNotebooks.Training.Checkpoint.Load(path, target, new Dictionary<string, float[]> { ["gates"] = gates });
        Assert.Equal(5, target.StepCount);
        Assert.Equal([1f, 2f], gates);
        Assert.Equal(saved.Parameters[0].Value, target.Parameters[0].Value);
    }

    // ---- eval sets ----

    private string EvalFile(params string[] lines)
    {
        string path = Path.Combine(_dir, "eval.jsonl.gz");
        using (var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest))
            foreach (var l in lines) gz.Write(Encoding.UTF8.GetBytes(l + "\n"));
        return path;
    }

    [Fact]
    public void An_eval_line_of_an_empty_object_is_an_error_not_a_regeneration()
    {
        var set = EvalSet.Create(TaskSuite.Parse("niah_mk"), 256, 1);
        string good = Path.Combine(_dir, "good.jsonl.gz");
        set.Save(good);
        string line;
        using (var r = new StreamReader(new GZipStream(File.OpenRead(good), CompressionMode.Decompress))) line = r.ReadLine()!;
        string path = EvalFile(line, "{}");
        Fails(() => EvalSet.Load(path), "line 2.task", "must be a string (missing)");
        // and LoadOrCreate does not fall back to generating a fresh set over a broken file
        File.Move(path, Path.Combine(_dir, EvalSet.FileName(256)));
        Assert.Throws<InputException>(() => EvalSet.LoadOrCreate(_dir, TaskSuite.Parse("niah_mk"), 256, 1));
    }

    [Fact]
    public void A_billion_character_eval_line_stops_at_the_cap()
    {
        // One line longer than the cap (1.2 billion characters ran out of memory); a few KB compressed.
        string path = Path.Combine(_dir, "long.jsonl.gz");
        using (var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest))
        {
            var chunk = Encoding.ASCII.GetBytes(new string('7', 1 << 20));
            for (int i = 0; i <= EvalSet.MaxLineChars >> 20; i++) gz.Write(chunk);
        }
        Fails(() => EvalSet.Load(path), "line 1", "longer than");
    }

    [Fact]
    public void Eval_token_ids_and_lengths_are_checked()
    {
        Fails(() => EvalSet.Load(EvalFile("""{"task":"niah_mk","length":4,"seed":1,"context":[1],"question":[2],"answer":[99999]}""")),
              "line 1.answer[0]", $"in [0, {Vocabulary.Default.Size - 1}]");
        Fails(() => EvalSet.Load(EvalFile("""{"task":"niah_mk","length":9,"seed":1,"context":[1],"question":[2],"answer":[3]}""")),
              "line 1", "= 4 tokens, but the length is 9");
        Fails(() => EvalSet.Load(EvalFile("""{"task":"sudoku","length":4,"seed":1,"context":[1],"question":[2],"answer":[3]}""")),
              "line 1.task", "unknown task");
    }

    [Fact]
    public void A_truncated_gzip_eval_set_is_an_error()
    {
        string good = Path.Combine(_dir, "good.jsonl.gz");
        EvalSet.Create(TaskSuite.Parse("niah_mk,json_kv"), 256, 2).Save(good);
        var bytes = File.ReadAllBytes(good);
        string path = Write("cut.jsonl.gz", bytes[..(bytes.Length - 6)]);   // loaded in full before: the trailer went unchecked
        Assert.Throws<InputException>(() => EvalSet.Load(path));
        // cut at the end of the first line's deflate block: the set loaded with examples missing
        foreach (int cut in new[] { bytes.Length / 2, bytes.Length - 20 })
            Assert.Throws<InputException>(() => EvalSet.Load(Write("cut.jsonl.gz", bytes[..cut])));
    }

    // ---- tokenizer ----

    [Theory]
    [InlineData("""{"<unk>": 0, "a": "1"}""", "model.vocab.a", "must be an integer")]           // InvalidOperationException before
    [InlineData("""{"<unk>": 0, "": 1}""", "model.vocab.", "empty string is not a word")]
    [InlineData("""{"<unk>": 0, "a b": 1}""", "model.vocab.a b", "whitespace")]
    [InlineData("""{"<unk>": 0, "a": 2}""", "model.vocab.a", "in [0, 1]")]
    [InlineData("""{"a": 0}""", "model.unk_token", "not in the vocabulary")]
    public void Tokenizer_vocabularies_are_checked(string vocab, string field, string rule)
    {
        string path = Write("tokenizer.json", """{"model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": """ + vocab + "}}");
        Fails(() => WordTokenizer.Load(path), field, rule);
    }

    // ---- results CSV ----

    [Theory]
    [InlineData("m,c,full,x,1024,0,t,R,1,NaN,0,1,1,1,1,1,1,1", "row 2.score", "[0, 1]")]
    [InlineData("m,c,full,x,1024,0,t,R,1,0.5,0,-1,1,1,1,1,1,1", "row 2.footprint", "[0, ")]
    [InlineData("m,c,full,x,1024,0,t,R,1,0.5,0,1,1,1,1,1,1", "row 2", "has 17 fields")]
    [InlineData(",c,full,x,1024,0,t,R,1,0.5,0,1,1,1,1,1,1,1", "row 2.model", "must not be empty")]
    [InlineData("m,c,full,x,1024,0,t,R,1,0.5,0,1,1,1,1,1,1,1\nm,c,full,x,1024,0,t,R,2,0.6,0,1,1,1,1,1,1,1", "row 3", "repeats the key of row 2")]
    public void Result_rows_are_checked(string rows, string field, string rule)
    {
        // A file from before the per-example columns: they are optional.
        string path = Write("r.csv", string.Join(',', EvalRow.Columns.Except(EvalRow.OptionalColumns)) + "\n" + rows + "\n");
        Fails(() => EvalRow.Load(path), field, rule);
    }

    [Theory]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,fixed,1 0 1", "row 2.example_scores", "holds 3 scores, the row has 2 examples")]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,fixed,1 1", "row 2.example_scores", "average 1, the row's score is 0.5")]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,fixed,1  0", "row 2.example_scores", "example 1: '' is not a number")]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,fixed,1 NaN", "row 2.example_scores", "example 1")]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,fixed,-0 1", "row 2.example_scores", "example 0: '-0' is not a number")]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,held-out,1 0", "row 2.example_set", "neither fixed nor seed:N")]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,seed:007,1 0", "row 2.example_set", "no leading zeros")]
    [InlineData("m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,seed:7,1 0\nm,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,seed:7,0 1", "row 3", "repeats the key of row 2")]
    public void Per_example_columns_are_checked(string rows, string field, string rule)
    {
        // a file from before the peak_rss_bytes column
        string path = Write("r.csv", string.Join(',', EvalRow.Columns.Where(c => c != "peak_rss_bytes")) + "\n" + rows + "\n");
        Fails(() => EvalRow.Load(path), field, rule);
    }

    [Theory]
    [InlineData("NaN", "finite number")]
    [InlineData("-1", "finite number")]
    [InlineData("Infinity", "finite number")]
    [InlineData("12 MiB", "is not a number")]
    public void The_peak_resident_memory_column_is_checked(string value, string rule)
    {
        string path = Write("r.csv", string.Join(',', EvalRow.Columns) + "\nm,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,fixed,1 0," + value + "\n");
        Fails(() => EvalRow.Load(path), "row 2.peak_rss_bytes", rule);
    }

    [Fact]
    public void Rows_on_the_fixed_sets_and_on_a_seed_base_are_kept_apart()
    {
        string path = Write("r.csv", string.Join(',', EvalRow.Columns.Where(c => c != "peak_rss_bytes")) + "\n" +
            "m,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,fixed,1 0\nm,c,full,x,1024,0,t,R,2,0.5,0,1,1,1,1,1,1,1,seed:91000000,0 1\n");
        var rows = EvalRow.Load(path);
        Assert.Equal([EvalRow.FixedSet, "seed:91000000"], rows.Select(r => r.ExampleSet));
        Assert.NotEqual(rows[0].Key, rows[1].Key);
        Assert.Equal(EvalRow.MakeKey("m", "full", "x", 1024, 0, "t"), rows[0].Key); // fixed-set keys are what they always were
    }

    // ---- sweep sidecar ----

    [Theory]
    [InlineData("""[1]""", "", "JSON object")]
    [InlineData("""{"runs": {}}""", "runs", "must be a list")]
    [InlineData("""{"runs": [1]}""", "runs[0]", "must be an object")]
    [InlineData("""{"runs": [{"rows_run": -1}]}""", "runs[0].rows_run", "≥ 0")]
    public void Sweep_sidecars_are_checked(string json, string field, string rule)
    {
        string path = Write("r.csv.config.json", json);
        Fails(() => SweepSidecar.Load(path), field, rule);
    }

    // ---- notebooks ----

    [Theory]
    [InlineData("""{"nbformat": "4", "cells": []}""", "nbformat", "must be an integer")]         // InvalidOperationException before
    [InlineData("""{"cells": [{"cell_type": "code", "source": [1]}]}""", "cells[0].source[0]", "must be a string")]
    [InlineData("""{"cells": [{"cell_type": "code", "id": 7, "source": ""}]}""", "cells[0].id", "must be a string")]
    [InlineData("""{"cells": [], "metadata": {"kernelspec": []}}""", "metadata.kernelspec", "must be an object")]
    [InlineData("""{"cells": [], "cells": []}""", "cells", "duplicate key")]
    public void Ipynb_structure_is_checked(string json, string field, string rule)
    {
        string path = Write("n.ipynb", json);
        Fails(() => Notebook.Load(path), field, rule);
    }

    [Fact]
    public void A_dib_meta_block_that_is_not_json_is_typed()
    {
        string path = Write("n.dib", "#!meta\n\n{\"kernelInfo\": {\"defaultKernelName\": \n\n#!csharp\n\n1\n");   // a raw JsonReaderException before
        Assert.StartsWith("#!meta", Assert.Throws<InputException>(() => Notebook.Load(path)).Field);
        path = Write("m.dib", "#!meta\n\n{\"kernelInfo\": {\"defaultKernelName\": 5}}\n\n#!csharp\n\n1\n");
        Fails(() => Notebook.Load(path), "#!meta.kernelInfo.defaultKernelName", "must be a string");
    }

    [Fact]
    public void The_shipped_files_load_as_before()
    {
        string root = TestPaths.RepoRoot;
        var weights = LlamaWeights.Load(Path.Combine(root, "data", "models", "kvnb-small"));
        Assert.Equal(4, weights.Config.NumLayers);
        Assert.Equal(576, WordTokenizer.Load(Path.Combine(root, "data", "models", "kvnb-small", "tokenizer.json")).VocabSize);
        foreach (var f in Directory.GetFiles(Path.Combine(root, "data", "eval"), "*.jsonl.gz")) Assert.NotEmpty(EvalSet.Load(f).Examples);
        foreach (var f in Directory.GetFiles(Path.Combine(root, "data", "results"), "*.csv")) Assert.NotEmpty(EvalRow.Load(f));
        foreach (var f in Directory.GetFiles(Path.Combine(root, "data", "results"), "*.config.json")) Assert.NotEmpty(SweepSidecar.Load(f));
        foreach (var f in Directory.GetFiles(Path.Combine(root, "data", "configs"), "train-*.json")) Assert.True(PretrainConfig.Load(f).TotalSteps > 0);
        foreach (var f in Directory.GetFiles(Path.Combine(root, "notebooks"), "*.ipynb")) Assert.NotEmpty(Notebook.Load(f).Cells);
    }
}
