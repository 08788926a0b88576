using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace KvNotebooks.HeadMasks;

/// <summary>Where a masks-and-weights run starts its masks: a scores file binarized at a head sparsity with PruLong's
/// rule, full heads at log α = +10 and streaming heads at −10 (the code's <c>load_masks_from</c>).</summary>
public sealed record InitMasks
{
    public string Path { get; init; } = "";
    public double Sparsity { get; init; }
}

/// <summary>
/// What <c>kvnb masks train</c> runs: the method (duo, prulong or locret), the frozen model, the streaming head, the data
/// mix, the steps and the optimizer. Plain data in a JSON file with snake_case keys. Fields left out take the method's
/// defaults (those of its official code, <see cref="WithDefaults"/>); the run folder keeps the resolved config, streaming
/// head included, so a run documents itself and a resume can check it is the same run. Paths are relative to the
/// working directory (the repository root for the shipped configs).
/// </summary>
public sealed record MaskTrainConfig
{
    public string Method { get; init; } = "";
    /// <summary>The model folder (Hugging Face layout) whose masks are learned.</summary>
    public string Model { get; init; } = "data/models/kvnb-small";
    /// <summary>The streaming head; in the file either a path to a streaming.json or the object itself.</summary>
    [JsonIgnore] public StreamingConfig Streaming { get; init; } = null!;
    public int Seed { get; init; } = 1;
    public int Steps { get; init; }
    /// <summary>Tokens per training sequence (our evaluation context, 2,048).</summary>
    public int Length { get; init; } = 2048;
    /// <summary>Sequences per step.</summary>
    public int Batch { get; init; } = 1;
    /// <summary>Weights of the data sources (<see cref="MaskData.Sources"/>): natural_text, task_documents, passkeys, context_synthesis.</summary>
    public Dictionary<string, double> Data { get; init; } = [];
    /// <summary>Pass keys per haystack in the passkeys source (DuoAttention: 10).</summary>
    public int Passkeys { get; init; } = 10;

    /// <summary>Learning rate of the method's own parameters: Duo's gates, PruLong's log α, Locret's retaining heads.</summary>
    public double? Lr { get; init; }
    public double? WeightDecay { get; init; }
    public double? Beta1 { get; init; }
    public double? Beta2 { get; init; }
    /// <summary>Global gradient-norm clip (0: none).</summary>
    public double? ClipNorm { get; init; }
    /// <summary>Learning-rate schedule: "cosine" (warmup, cosine to min_lr_ratio), "linear" (warmup, linear to
    /// min_lr_ratio) or "duo" (DuoAttention's: up over the first fifth from 0.1, down over the last fifth to 0.1).</summary>
    public string? Schedule { get; init; }
    public double? WarmupRatio { get; init; }
    public double? MinLrRatio { get; init; }

    /// <summary>Duo: weight of the L1 penalty on the gates.</summary>
    public double? RegWeight { get; init; }

    /// <summary>PruLong: learning rate of λ1, λ2 (gradient ascent).</summary>
    public double? LambdaLr { get; init; }
    /// <summary>PruLong: learning rate of the model weights; 0 = frozen (masks only, the default).</summary>
    public double? WeightsLr { get; init; }
    /// <summary>PruLong: the final target sparsity t.</summary>
    public double? TargetSparsity { get; init; }
    /// <summary>PruLong: the target at step 0 (0; a masks-and-weights run starts at its end sparsity).</summary>
    public double? StartSparsity { get; init; }
    /// <summary>PruLong: the target rises linearly over this fraction of the steps.</summary>
    public double? SparsityWarmupRatio { get; init; }
    /// <summary>PruLong: log α ~ N(init_log_alpha, init_log_alpha_std²).</summary>
    public double? InitLogAlpha { get; init; }
    public double? InitLogAlphaStd { get; init; }
    /// <summary>PruLong: start from these masks instead (masks-and-weights).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public InitMasks? InitMasks { get; init; }

    /// <summary>Locret: hidden width of the retaining heads' two-layer network.</summary>
    public int? HiddenSize { get; init; }
    /// <summary>Locret: weight of the smoothness term (squared difference of neighbouring tokens' scores).</summary>
    public double? SmoothWeight { get; init; }
    /// <summary>Locret: every gradient value is clipped to ±clip_value (0: none).</summary>
    public double? ClipValue { get; init; }

    /// <summary>Kernel threads (the CLI's --threads overrides it; applied once, at the command's entry).</summary>
    public int Threads { get; init; } = 2;
    public int CheckpointEvery { get; init; } = 10;

    public bool IsDuo => Method == "duo";
    public bool IsPruLong => Method == "prulong";
    public bool IsLocret => Method == "locret";

    /// <summary>Every unset optimisation field set to the method's official value: Duo (duo-attention's train.py and its
    /// Llama-3.1 pattern): gates at lr 0.02, AdamW β (0.9, 0.999) without decay or clipping, its schedule, L1 weight 0.05.
    /// PruLong (prulong_masksonly.sh, lh_trainer.py): log α and λ at lr 1, AdamW β (0.9, 0.95), weight decay 0.1 on every
    /// group, clip 1.0, cosine with 10 % warmup and a 1 % floor, target 0 → t over 80 % of the steps, log α ~ N(4, 0.01).
    /// Locret (train.py): lr 5e-4, β (0.9, 0.95), torch's default decay 0.01, values clipped to ±0.5, linear warmup over
    /// two thirds of the steps then linear decay to 0, smoothness weight 0.0025.</summary>
    public MaskTrainConfig WithDefaults() => Method switch
    {
        "duo" => this with
        {
            Lr = Lr ?? 0.02, WeightDecay = WeightDecay ?? 0.0, Beta1 = Beta1 ?? 0.9, Beta2 = Beta2 ?? 0.999, ClipNorm = ClipNorm ?? 0.0,
            Schedule = Schedule ?? "duo", WarmupRatio = WarmupRatio ?? 0.2, MinLrRatio = MinLrRatio ?? 0.1, RegWeight = RegWeight ?? 0.05,
        },
        "prulong" => this with
        {
            Lr = Lr ?? 1.0, LambdaLr = LambdaLr ?? 1.0, WeightsLr = WeightsLr ?? 0.0, WeightDecay = WeightDecay ?? 0.1,
            Beta1 = Beta1 ?? 0.9, Beta2 = Beta2 ?? 0.95, ClipNorm = ClipNorm ?? 1.0, Schedule = Schedule ?? "cosine",
            WarmupRatio = WarmupRatio ?? 0.1, MinLrRatio = MinLrRatio ?? 0.01, TargetSparsity = TargetSparsity ?? 0.7,
            StartSparsity = StartSparsity ?? 0.0, SparsityWarmupRatio = SparsityWarmupRatio ?? 0.8,
            InitLogAlpha = InitLogAlpha ?? 4.0, InitLogAlphaStd = InitLogAlphaStd ?? 0.01,
        },
        "locret" => this with
        {
            Lr = Lr ?? 5e-4, WeightDecay = WeightDecay ?? 0.01, Beta1 = Beta1 ?? 0.9, Beta2 = Beta2 ?? 0.95, ClipNorm = ClipNorm ?? 0.0,
            ClipValue = ClipValue ?? 0.5, Schedule = Schedule ?? "linear", WarmupRatio = WarmupRatio ?? 2.0 / 3, MinLrRatio = MinLrRatio ?? 0.0,
            HiddenSize = HiddenSize ?? 256, SmoothWeight = SmoothWeight ?? 0.0025,
        },
        _ => throw new InvalidDataException($"unknown method '{Method}' (duo, prulong or locret)"),
    };

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    public static MaskTrainConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"mask training config '{path}' does not exist", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses, resolves the streaming head and the method's defaults, and validates; errors name the source and field.</summary>
    public static MaskTrainConfig Parse(string text, string source)
    {
        JsonObject root;
        try { root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                     ?? throw new InvalidDataException($"{source}: not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: not valid JSON ({e.Message})"); }
        var streamingNode = root["streaming"];
        root.Remove("streaming");
        StreamingConfig streaming = streamingNode switch
        {
            JsonValue v when v.TryGetValue(out string? p) => StreamingConfig.Load(Resolve(p, source)),
            JsonObject o => StreamingConfig.FromJson(o, $"{source} (streaming)"),
            null => StreamingConfig.Load(Resolve(StreamingConfig.DefaultPath, source)),
            _ => throw new InvalidDataException($"{source}: \"streaming\" must be a path to a streaming.json or its object"),
        };
        MaskTrainConfig cfg;
        try { cfg = root.Deserialize<MaskTrainConfig>(Json) ?? throw new InvalidDataException($"{source}: empty"); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: {e.Message}"); }
        if (cfg.Method is not ("duo" or "prulong" or "locret")) throw new InvalidDataException($"{source}: \"method\" must be duo, prulong or locret (got '{cfg.Method}')");
        cfg = (cfg with { Streaming = streaming, Model = Resolve(cfg.Model, source) }).WithDefaults();
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>
    /// A relative path in a config names a file from the working directory (the repository root, as the shipped
    /// configs are written); when it is not there, from the config's own folder and the folders above it, so a
    /// config also loads from elsewhere (a test host, a notebook folder). Unfound, the path is returned as written
    /// and the loader's error names it.
    /// </summary>
    internal static string Resolve(string path, string source)
    {
        if (Path.IsPathRooted(path) || File.Exists(path) || Directory.Exists(path)) return path;
        string? dir;
        try { dir = Path.GetDirectoryName(Path.GetFullPath(source)); } catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException) { return path; }
        for (; dir != null; dir = Path.GetDirectoryName(dir))
        {
            string candidate = Path.Combine(dir, path);
            if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
        }
        return path;
    }

    /// <summary>The resolved config as JSON, the streaming head inlined: the form saved in the run folder.</summary>
    public string ToJson()
    {
        var o = JsonSerializer.SerializeToNode(this, Json)!.AsObject();
        var result = new JsonObject();
        foreach (var (k, v) in o)
        {
            result[k] = v?.DeepClone();
            if (k == "model") result["streaming"] = Streaming.ToJson();
        }
        return result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>The config without the fields that do not change what a step computes (threads, checkpoint interval).</summary>
    public string CoreJson() => (this with { Threads = 1, CheckpointEvery = 1 }).ToJson();

    public void Validate(string source = "mask training config")
    {
        void Require(bool ok, string what) { if (!ok) throw new InvalidDataException($"{source}: {what}"); }
        Require(Steps >= 1, "steps must be ≥ 1");
        Require(Length >= 32 && Batch >= 1, "length ≥ 32 and batch ≥ 1 are required");
        Require(Threads >= 1 && CheckpointEvery >= 1, "threads and checkpoint_every must be ≥ 1");
        Require(Data.Count > 0 && Data.Values.Any(w => w > 0), "data: give at least one source a positive weight");
        foreach (var (name, w) in Data)
        {
            Require(MaskData.Sources.Contains(name), $"data: unknown source '{name}' (sources: {string.Join(", ", MaskData.Sources)})");
            Require(w >= 0 && double.IsFinite(w), $"data: weight of {name} must be ≥ 0");
        }
        Require(Lr > 0 && WeightDecay >= 0 && Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1 && ClipNorm >= 0, "lr > 0, weight_decay ≥ 0, 0 ≤ beta1, beta2 < 1 and clip_norm ≥ 0 are required");
        Require(Schedule is "cosine" or "linear" or "duo", $"schedule must be cosine, linear or duo (got '{Schedule}')");
        Require(WarmupRatio is >= 0 and <= 1 && MinLrRatio is >= 0 and <= 1, "warmup_ratio and min_lr_ratio must be in [0, 1]");
        if (IsDuo) Require(RegWeight >= 0, "reg_weight must be ≥ 0");
        if (IsPruLong)
        {
            Require(LambdaLr >= 0 && WeightsLr >= 0, "lambda_lr and weights_lr must be ≥ 0");
            Require(TargetSparsity is >= 0 and <= 1 && StartSparsity is >= 0 and <= 1 && SparsityWarmupRatio is >= 0 and <= 1,
                "target_sparsity, start_sparsity and sparsity_warmup_ratio must be in [0, 1]");
            Require(InitLogAlphaStd >= 0, "init_log_alpha_std must be ≥ 0");
            if (InitMasks is { } im) Require(im.Path.Length > 0 && im.Sparsity is >= 0 and <= 1, "init_masks needs a path and a sparsity in [0, 1]");
        }
        if (IsLocret) Require(HiddenSize >= 1 && SmoothWeight >= 0 && ClipValue >= 0, "hidden_size ≥ 1, smooth_weight ≥ 0 and clip_value ≥ 0 are required");
    }

    /// <summary>The learning-rate factor of the s-th update (s = 1, 2, …) under <see cref="Schedule"/>.</summary>
    public double LrFactor(int s)
    {
        int n = Steps;
        if (Schedule == "duo")
        {
            // duo-attention's LambdaLR at scheduler step s − 1: min(1, max((k+1)/(n/5), 0.1), max((n−k)/(n/5), 0.1))
            int k = s - 1;
            double fifth = Math.Max(1, n / 5);
            return Math.Min(1.0, Math.Min(Math.Max((k + 1) / fifth, 0.1), Math.Max((n - k) / fifth, 0.1)));
        }
        int warmup = (int)Math.Ceiling(WarmupRatio!.Value * n);
        var decay = Schedule == "linear" ? Training.LrDecay.Linear : Training.LrDecay.Cosine;
        return new Training.LrSchedule(warmup, n, decay, MinLrRatio!.Value).Factor(s);
    }

    /// <summary>PruLong's target sparsity at 0-based step k: start + (end − start)·k/⌈ratio·steps⌉ during the warmup, then end.</summary>
    public double TargetAt(int k)
    {
        double start = StartSparsity ?? 0, end = TargetSparsity ?? 0;
        int warm = (int)Math.Ceiling((SparsityWarmupRatio ?? 0) * Steps);
        return k < warm ? start + (end - start) * k / warm : end;
    }
}
