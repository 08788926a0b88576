using System.Text;
using KvNotebooks.Evaluation;
using KvNotebooks.Model;
using KvNotebooks.Tasks;
using KvNotebooks.Training;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.Validation.Fuzz;

/// <summary>
/// The library's file formats under fuzz: config.json, safetensors, tokenizer.json, the training config, training
/// checkpoints, eval sets (.jsonl.gz), results CSV and the sweep sidecar. Each entry is a seed folder, mutators,
/// the project's own loader and an independent check of what a correct load is. (The notebook formats are
/// registered by KvNotebooks.Notebooks; the CLI's <c>kvnb fuzz</c> and the tests list both.)
/// </summary>
public static class LibraryFuzzFormats
{
    /// <summary>A two-layer model small enough to load thousands of times a second.</summary>
    public static LlamaConfig TinyConfig { get; } = new()
    {
        VocabSize = 16, HiddenSize = 8, IntermediateSize = 12, NumLayers = 2, NumHeads = 2, NumKvHeads = 1, HeadDim = 4,
        MaxPositionEmbeddings = 64, BosTokenId = 1, EosTokenId = 2,
    };

    public static IReadOnlyList<FuzzFormat> All { get; } =
        [Config(), Safetensors(), Tokenizer(), TrainConfig(), Checkpoint(), EvalSetFormat(), Results(), Sidecar(), HeadScoresFormat(), HeadMaskFormat()];

    private static IReadOnlyList<Mutator> JsonMutators => [.. Mutators.Bytes, .. Mutators.Json, .. Mutators.Json];

    private static Dictionary<string, byte[]> TinyModelFiles()
    {
        var dir = Directory.CreateTempSubdirectory("kvnb-fuzz-seed-").FullName;
        try
        {
            LlamaWeights.Random(TinyConfig, seed: 1).Save(dir);
            return Directory.GetFiles(dir).ToDictionary(Path.GetFileName, File.ReadAllBytes)!;
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>What a loaded model must be: a valid config, every tensor in its shape, all finite.</summary>
    private static string? CheckWeights(object? value)
    {
        var w = (LlamaWeights)value!;
        w.Config.Validate("check");
        if (w.Layers.Length != w.Config.NumLayers) return $"{w.Layers.Length} layers for num_hidden_layers {w.Config.NumLayers}";
        var shapes = LlamaWeights.ExpectedShapes(w.Config);
        foreach (var (name, shape, data) in w.NamedTensors())
        {
            if (!shapes.TryGetValue(name, out var want) || !want.SequenceEqual(shape)) return $"tensor {name} is not one the config has";
            if (data.Length != shape.Aggregate(1L, (a, b) => a * b)) return $"tensor {name} has {data.Length} values for shape [{string.Join(", ", shape)}]";
            if (NonFinite.Count(data) > 0) return $"tensor {name} holds NaN/Inf";
        }
        if (w.Config.TieWordEmbeddings && !ReferenceEquals(w.LmHead, w.Embedding)) return "tied lm_head is not the embedding";
        return null;
    }

    private static FuzzFormat Config() => new()
    {
        Name = "config",
        Target = "config.json",
        Seed = TinyModelFiles,
        Mutators = JsonMutators,
        Load = dir => LlamaWeights.Load(dir),
        Check = CheckWeights,
    };

    private static FuzzFormat Safetensors() => new()
    {
        Name = "safetensors",
        Target = "model.safetensors",
        Seed = TinyModelFiles,
        Mutators =
        [
            .. Mutators.Bytes, .. Mutators.Json.Select(Mutators.InSafetensorsHeader), .. Mutators.Json.Select(Mutators.InSafetensorsHeader),
            .. Mutators.Bytes.Select(Mutators.InSafetensorsHeader),
            Mutators.NonFiniteFloats(b => b.Length < 8 || BitConverter.ToUInt64(b, 0) > (ulong)(b.Length - 8) ? b.Length : 8 + (int)BitConverter.ToUInt64(b, 0)),
            new("header-length", (b, r) =>
            {
                if (b.Length < 8) return null;
                ulong n = BitConverter.ToUInt64(b, 0);
                ulong[] values = [0, 1, 2, n - 1, n + 1, (ulong)b.Length, (ulong)b.Length - 8, 100_000_001, 1UL << 63, ulong.MaxValue, (ulong)int.MaxValue + 1];
                var c = (byte[])b.Clone();
                BitConverter.TryWriteBytes(c.AsSpan(0, 8), values[r.Next(values.Length)]);
                return c;
            }),
        ],
        Load = dir => LlamaWeights.Load(dir),
        Check = CheckWeights,
    };

    private static FuzzFormat Tokenizer() => new()
    {
        Name = "tokenizer",
        Target = "tokenizer.json",
        Seed = () =>
        {
            string path = Path.Combine(Path.GetTempPath(), $"kvnb-fuzz-tok-{Guid.NewGuid():N}.json");
            try
            {
                new WordTokenizer(["<unk>", "<bos>", "<eos>", "a", "b", "key", "value", "é", "🙂"]).Save(path);
                return new Dictionary<string, byte[]> { ["tokenizer.json"] = File.ReadAllBytes(path) };
            }
            finally { File.Delete(path); }
        },
        Mutators = JsonMutators,
        Load = dir => WordTokenizer.Load(Path.Combine(dir, "tokenizer.json")),
        Check = value =>
        {
            var t = (WordTokenizer)value!;
            if (t.VocabSize < 1 || (uint)t.UnkId >= (uint)t.VocabSize) return "empty vocabulary or unk outside it";
            for (int id = 0; id < t.VocabSize; id++)
            {
                string w = t.Word(id);
                if (string.IsNullOrEmpty(w) || w.Any(char.IsWhiteSpace)) return $"word {id} is empty or holds whitespace";
                if (!t.Encode(w).SequenceEqual([id])) return $"word '{w}' does not encode to its id {id}";
            }
            return null;
        },
    };

    private const string TrainConfigText = """
        {
          // a hand-written config: comments and trailing commas are allowed
          "model": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 576, "hidden_size": 32,
                    "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                    "head_dim": 8, "rope_theta": 1000000.0, "max_position_embeddings": 4096, "tie_word_embeddings": true},
          "seed": 3, "init_std": 0.02, "warmup_steps": 2, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "clip_norm": 1.0,
          "threads": 1, "checkpoint_every": 3, "eval_every": 100, "eval_examples": 1, "log_every": 1,
          "stages": [
            {"length": 128, "batch": 2, "steps": 4, "lr": 0.003, "tasks": {"niah_mk": 1, "copy": 1}, "questions": {"niah_mk": 2}},
            {"length": 160, "batch": 1, "steps": 4, "lr": 0.003, "end_lr": 0.001},
          ],
        }
        """;

    private static FuzzFormat TrainConfig() => new()
    {
        Name = "train-config",
        Target = "train.json",
        Seed = () => new Dictionary<string, byte[]> { ["train.json"] = Encoding.UTF8.GetBytes(TrainConfigText) },
        Mutators = JsonMutators,
        Load = dir => PretrainConfig.Load(Path.Combine(dir, "train.json")),
        Check = value =>
        {
            var c = (PretrainConfig)value!;
            c.Validate("check");
            if (c.TotalSteps < 1 || c.Stages.Any(s => s is null)) return "no steps";
            for (int i = 0; i < c.Stages.Length; i++) _ = c.StageTasks(i);
            string json = c.ToJson();
            return PretrainConfig.Parse(json, "round trip").ToJson() == json ? null : "does not survive a round trip";
        },
    };

    private static FuzzFormat Checkpoint()
    {
        var model = new TrainableLlama(LlamaWeights.Random(TinyConfig, seed: 2));
        var optimizer = new AdamW(model.Parameters, AdamW.DefaultGroups(1e-3));
        float[] Snapshot(float[] gates) =>
        [
            optimizer.StepCount, .. gates,
            .. Enumerable.Range(0, optimizer.Parameters.Count).SelectMany(i => optimizer.Parameters[i].Value.Concat(optimizer.FirstMoment(i)).Concat(optimizer.SecondMoment(i))),
        ];
        return new FuzzFormat
        {
            Name = "checkpoint",
            Target = "checkpoint.bin",
            Seed = () =>
            {
                var seedModel = new TrainableLlama(LlamaWeights.Random(TinyConfig, seed: 3));
                var seedOptimizer = new AdamW(seedModel.Parameters, AdamW.DefaultGroups(1e-3)) { StepCount = 7 };
                for (int i = 0; i < seedOptimizer.Parameters.Count; i++)
                {
                    Array.Fill(seedOptimizer.FirstMoment(i), 0.01f * (i + 1));
                    Array.Fill(seedOptimizer.SecondMoment(i), 0.001f * (i + 1));
                }
                string path = Path.Combine(Path.GetTempPath(), $"kvnb-fuzz-ckpt-{Guid.NewGuid():N}.bin");
                try
                {
                    Training.Checkpoint.Save(path, seedOptimizer, new Dictionary<string, float[]> { ["gates"] = [0.5f, 0.25f, 1f, 0f], ["other"] = [1f] });
                    return new Dictionary<string, byte[]> { ["checkpoint.bin"] = File.ReadAllBytes(path) };
                }
                finally { File.Delete(path); }
            },
            Mutators =
            [
                .. Mutators.Bytes, .. Mutators.Bytes,
                Mutators.Int32Fields("int-field", CheckpointIntOffsets),
                Mutators.Int32Fields("string-prefix", b => CheckpointStringOffsets(b).Select(o => o).ToList()),
                Mutators.NonFiniteFloats(b => Math.Min(b.Length, 40)),
            ],
            Load = dir =>
            {
                var gates = new float[4];
                var before = Snapshot(gates);
                try
                {
                    Training.Checkpoint.Load(Path.Combine(dir, "checkpoint.bin"), optimizer, new Dictionary<string, float[]> { ["gates"] = gates });
                }
                catch
                {
                    if (!before.AsSpan().SequenceEqual(Snapshot(gates)))
                        throw new FuzzViolationException("partial load", "a failed load changed the optimizer's parameters or the extra arrays");
                    throw;
                }
                return (optimizer, gates);
            },
            Check = value =>
            {
                var (o, gates) = ((AdamW, float[]))value!;
                if (o.StepCount < 0) return "negative step";
                if (NonFinite.Count(gates) > 0) return "non-finite extra";
                for (int i = 0; i < o.Parameters.Count; i++)
                    if (NonFinite.Count(o.Parameters[i].Value) > 0 || NonFinite.Count(o.FirstMoment(i)) > 0 || o.SecondMoment(i).Any(v => !(v >= 0) || !float.IsFinite(v)))
                        return $"parameter {o.Parameters[i].Name} holds NaN/Inf or a negative second moment";
                return null;
            },
        };
    }

    /// <summary>Offsets of the checkpoint's 4-byte integers (version, step, counts, lengths), found by walking a valid layout.</summary>
    private static List<int> CheckpointIntOffsets(byte[] b) => WalkCheckpoint(b).Ints;
    private static List<int> CheckpointStringOffsets(byte[] b) => WalkCheckpoint(b).Strings;

    private static (List<int> Ints, List<int> Strings) WalkCheckpoint(byte[] b)
    {
        var ints = new List<int>();
        var strings = new List<int>();
        int p = 0;
        bool ok = true;
        int Int() { if (p + 4 > b.Length) { ok = false; return 0; } ints.Add(p); int v = BitConverter.ToInt32(b, p); p += 4; return v; }
        void Str() { if (p >= b.Length) { ok = false; return; } strings.Add(p); int n = b[p] & 0x7F; p += 1 + n; }
        Str(); Int(); Int();
        int count = Int();
        for (int i = 0; ok && i < count && i < 1000; i++) { Str(); int len = Int(); if (len < 0 || len > b.Length) return (ints, strings); p += 12 * len; }
        int extras = Int();
        for (int i = 0; ok && i < extras && i < 1000; i++) { Str(); int len = Int(); if (len < 0 || len > b.Length) return (ints, strings); p += 4 * len; }
        return (ints, strings);
    }

    private static FuzzFormat EvalSetFormat()
    {
        var lineMutators = new List<Mutator>([.. Mutators.Json.Select(m => Mutators.InLine(m)), .. Mutators.Lines("{}", "{\"task\":\"niah_mk\"}")]);
        return new FuzzFormat
        {
            Name = "evalset",
            Target = "eval-256.jsonl.gz",
            Seed = () =>
            {
                string path = Path.Combine(Path.GetTempPath(), $"kvnb-fuzz-eval-{Guid.NewGuid():N}.jsonl.gz");
                try
                {
                    EvalSet.Create(TaskSuite.Parse("niah_mk,json_kv"), 256, 2, seedBase: 5).Save(path);
                    return new Dictionary<string, byte[]> { ["eval-256.jsonl.gz"] = File.ReadAllBytes(path) };
                }
                finally { File.Delete(path); }
            },
            Mutators = [.. Mutators.Bytes, .. lineMutators.Select(Mutators.InGzip), .. lineMutators.Select(Mutators.InGzip),
                        .. Mutators.Bytes.Select(Mutators.InGzip)],
            Load = dir => EvalSet.Load(Path.Combine(dir, "eval-256.jsonl.gz")),
            Check = value =>
            {
                var set = (EvalSet)value!;
                if (set.Examples.Count == 0) return "no examples";
                int vocab = Vocabulary.Default.Size;
                foreach (var e in set.Examples)
                {
                    if (!TaskSuite.All.Any(t => t.Name == e.Task)) return $"unknown task {e.Task}";
                    if (e.Length != set.Length || e.Questions.Length != 1) return "length or question count differs";
                    var qa = e.Questions[0];
                    if (e.Context.Concat(qa.Question).Concat(qa.Answer).Any(id => (uint)id >= (uint)vocab)) return "token id outside the vocabulary";
                    if (qa.Question.Length == 0 || qa.Answer.Length == 0) return "empty question or answer";
                    if (e.TrainingLength != e.Length) return $"{e.TrainingLength} tokens for length {e.Length}";
                    if ((qa.GradedIds is null) != (qa.Grades is null)) return "graded ids without grades";
                }
                return null;
            },
        };
    }

    private static readonly string[] HostileCells =
        ["", " ", "NaN", "-1", "1e400", "Infinity", "-Infinity", "2147483648", "abc", "\"", "\"open", "\"a,b\"", "0x10", "1,5", "١", "-0", "1e-400", "\r"];

    private static FuzzFormat Results()
    {
        var cell = new Mutator("csv-cell", (b, r) =>
        {
            var cells = Encoding.UTF8.GetString(b).Split(',').ToList();
            switch (r.Next(4))
            {
                case 0: cells.RemoveAt(r.Next(cells.Count)); break;
                case 1: cells.Insert(r.Next(cells.Count + 1), HostileCells[r.Next(HostileCells.Length)]); break;
                default: cells[r.Next(cells.Count)] = HostileCells[r.Next(HostileCells.Length)]; break;
            }
            return Encoding.UTF8.GetBytes(string.Join(',', cells));
        });
        return new FuzzFormat
        {
            Name = "results",
            Target = "results.csv",
            Seed = () =>
            {
                string path = Path.Combine(Path.GetTempPath(), $"kvnb-fuzz-rows-{Guid.NewGuid():N}.csv");
                try
                {
                    EvalRow.Save(path, [
                        new EvalRow { Model = "m", Commit = "abc", Method = "full", MethodConfig = "full;chunk=none", Context = 1024, Chunk = 0, Task = "json_kv", Category = "Recall", Examples = 4, Score = 0.5, Chance = 0.01, Footprint = 1, PeakKv = 1, PeakKvEntries = 100, PeakKvBytes = 4096, PrefillTokensPerSecond = 1234.5, DecodeTokensPerSecond = 50.25, Seconds = 1.5, ExampleScores = new ExampleScores([1, 0, 1, 0]), PeakRssBytes = 104857600 },
                        new EvalRow { Model = "m", Commit = "abc", Method = "snapkv/patched", MethodConfig = "snapkv;schedule=patched;evict=0.5;rule=accounting;chunk=256", Context = 1024, Chunk = 256, Task = "rag", Category = "RAG", Examples = 4, Score = 0.25, Chance = 0.1, Footprint = 0.6, PeakKv = 0.7, PeakKvEntries = 70.5, PeakKvBytes = 2048, PrefillTokensPerSecond = 1000, DecodeTokensPerSecond = 40, Seconds = 2, ExampleScores = new ExampleScores([0.25, 0, 0.5, 0.25]) },
                        new EvalRow { Model = "m", Commit = "abc", Method = "snapkv/patched", MethodConfig = "snapkv;schedule=patched;evict=0.5;rule=accounting;chunk=256", Context = 1024, Chunk = 256, Task = "rag", Category = "RAG", Examples = 2, Score = 0.5, Chance = 0.1, Footprint = 0.6, PeakKv = 0.7, PeakKvEntries = 70.5, PeakKvBytes = 2048, PrefillTokensPerSecond = 1000, DecodeTokensPerSecond = 40, Seconds = 2, ExampleSet = EvalRow.SeedSet(91000000), ExampleScores = new ExampleScores([1, 0]) },
                        new EvalRow { Model = "m", Commit = "abc", Method = "pyramidkv/naive", MethodConfig = "pyramidkv;schedule=naive;evict=0.5;obs=64;chunk=256", Context = 1024, Chunk = 256, Task = "rag", Category = "RAG", Examples = 4, Score = 0.25, Chance = 0.1, Footprint = 0.6, PeakKv = 0.7, PeakKvEntries = 70.5, PeakKvBytes = 2048, PrefillTokensPerSecond = 1000, DecodeTokensPerSecond = 40, Seconds = 2 },
                    ]);
                    return new Dictionary<string, byte[]> { ["results.csv"] = File.ReadAllBytes(path) };
                }
                finally { File.Delete(path); }
            },
            Mutators = [.. Mutators.Bytes, Mutators.InLine(cell), Mutators.InLine(cell), Mutators.InLine(cell), .. Mutators.Lines("m,c")],
            Load = dir => EvalRow.Load(Path.Combine(dir, "results.csv")),
            Check = value =>
            {
                var rows = (List<EvalRow>)value!;
                if (rows.Select(r => r.Key).Distinct().Count() != rows.Count) return "two rows with one key";
                foreach (var r in rows)
                {
                    if (r.Model.Length == 0 || r.Method.Length == 0 || r.MethodConfig.Length == 0 || r.Task.Length == 0) return "empty key field";
                    if (r.Context < 1 || r.Chunk < 0 || r.Examples < 0) return "count out of range";
                    if (!(r.Score is >= 0 and <= 1) || !(r.Chance is >= 0 and <= 1)) return "score or chance outside [0, 1]";
                    if (new[] { r.Footprint, r.PeakKv, r.PeakKvEntries, r.PeakKvBytes, r.Seconds, r.PeakRssBytes ?? 0 }.Any(x => !double.IsFinite(x) || x < 0)) return "a measure is negative or not finite";
                    if (r.ExampleSet != EvalRow.FixedSet && !System.Text.RegularExpressions.Regex.IsMatch(r.ExampleSet, "^seed:(0|[1-9][0-9]*)$")) return "an unknown example set";
                    if (r.ExampleScores is { } s && (s.Count != r.Examples || s.Any(x => !(x is >= 0 and <= 1)) || Math.Abs(s.Average() - r.Score) > 1e-9))
                        return "per-example scores that do not match the row";
                    var parts = r.MethodConfig.Split(';');
                    if (parts.Any(x => x.StartsWith("evict=", StringComparison.Ordinal)) && !parts.Any(x => x.StartsWith("rule=", StringComparison.Ordinal)))
                        return "a rate without its budget rule";
                }
                // What a sweep does with them: write them back and read them again.
                string path = Path.Combine(Path.GetTempPath(), $"kvnb-fuzz-check-{Guid.NewGuid():N}.csv");
                try
                {
                    EvalRow.Save(path, rows);
                    return EvalRow.Load(path).SequenceEqual(rows) ? null : "rows change when written and read again";
                }
                finally { File.Delete(path); }
            },
        };
    }

    private const string SidecarText = """
        {
          "runs": [
            {
              "command": "kvnb sweep --model m --methods full --csv r.csv",
              "model": "m", "model_dir": "/tmp/m", "model_sha256": "0123456789abcdef", "commit": "abc",
              "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:10:00Z", "machine": "2 cores",
              "grid": {"methods": ["full"], "evicts": [0.5], "chunks": ["none"], "contexts": [1024], "examples": 4},
              "configs": ["full;chunk=none"], "notes": [], "rows_planned": 11, "rows_skipped": 0, "rows_run": 11
            },
            {
              "command": "kvnb sweep --model m --methods snapkv --csv r.csv", "model": "m", "commit": "abc",
              "started": "2026-01-02T00:00:00Z", "finished": null, "grid": {}, "configs": [], "notes": ["a note"],
              "rows_planned": 22, "rows_skipped": 11, "rows_run": 3, "interrupted": true
            }
          ]
        }
        """;

    /// <summary>Continuous head scores (DuoAttention's gates, PruLong's masks), checked against the tiny model's shape.</summary>
    private static FuzzFormat HeadScoresFormat() => new()
    {
        Name = "head-scores",
        Target = "scores.tsv",
        Seed = () => new Dictionary<string, byte[]> { ["scores.tsv"] = System.Text.Encoding.UTF8.GetBytes(ScoresText(TinyConfig, v => 0.125 * v)) },
        Mutators = [.. Mutators.Bytes, .. Mutators.Lines("nan\t0", "1\t2\t3", "-0.5\t1e400", "1e309", "\t\t", "0x10")],
        Load = dir => HeadMasks.HeadScores.Load(Path.Combine(dir, "scores.tsv"), TinyConfig),
        Check = v =>
        {
            var s = (HeadMasks.HeadScores)v!;
            if (s.NumLayers != TinyConfig.NumLayers || s.NumKvHeads != TinyConfig.NumKvHeads) return $"{s.NumLayers} × {s.NumKvHeads} scores for the model's {TinyConfig.NumLayers} × {TinyConfig.NumKvHeads}";
            for (int l = 0; l < s.NumLayers; l++) for (int h = 0; h < s.NumKvHeads; h++) if (!double.IsFinite(s[l, h])) return "a score that is not finite";
            return null;
        },
    };

    /// <summary>A 0/1 head mask (the headmask method's file).</summary>
    private static FuzzFormat HeadMaskFormat() => new()
    {
        Name = "head-mask",
        Target = "mask.tsv",
        Seed = () => new Dictionary<string, byte[]> { ["mask.tsv"] = System.Text.Encoding.UTF8.GetBytes(ScoresText(TinyConfig, v => v % 2)) },
        Mutators = [.. Mutators.Bytes, .. Mutators.Lines("0.5\t1", "1 1 1 1 1 1 1 1", "2", "-0", "1e0\t0")],
        Load = dir => Eviction.HeadMask.LoadTsv(Path.Combine(dir, "mask.tsv"), TinyConfig),
        Check = v => ((bool[,])v!) is var m && m.GetLength(0) == TinyConfig.NumLayers && m.GetLength(1) == TinyConfig.NumKvHeads ? null
            : "a mask whose shape is not the model's",
    };

    /// <summary>layers × KV heads values f(0), f(1), … as a TSV.</summary>
    private static string ScoresText(LlamaConfig c, Func<int, double> f) => string.Concat(Enumerable.Range(0, c.NumLayers).Select(l =>
        string.Join('\t', Enumerable.Range(0, c.NumKvHeads).Select(h => f(l * c.NumKvHeads + h).ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "\n"));

    private static FuzzFormat Sidecar() => new()
    {
        Name = "sidecar",
        Target = "results.csv.config.json",
        Seed = () => new Dictionary<string, byte[]> { ["results.csv.config.json"] = Encoding.UTF8.GetBytes(SidecarText) },
        Mutators = JsonMutators,
        Load = dir => SweepSidecar.Load(Path.Combine(dir, "results.csv.config.json")),
        Check = value =>
        {
            var runs = (System.Text.Json.Nodes.JsonArray)value!;
            foreach (var run in runs)
            {
                if (run is not System.Text.Json.Nodes.JsonObject o) return "a run is not an object";
                // What the sweep does with the last run: set these and write the file back.
                var copy = (System.Text.Json.Nodes.JsonObject)o.DeepClone();
                copy["finished"] = "x";
                copy["rows_run"] = 1;
                _ = copy.ToJsonString();
                if (o["rows_run"] is { } n && n.GetValue<int>() < 0) return "negative count";
            }
            return null;
        },
    };
}
