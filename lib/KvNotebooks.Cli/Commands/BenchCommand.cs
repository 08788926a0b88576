using System.CommandLine;
using KvNotebooks.Bench;
using KvNotebooks.Model;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb bench gemm|attention|prefill|decode|train</c>: speed as a fraction of the FMA peak
/// measured in the same run, and tokens/s.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Measure kernel and model speed against this machine's FMA peak; --vs-torch: against LibTorch");
        AddVsTorch(cmd);
        cmd.Subcommands.Add(Gemm());
        cmd.Subcommands.Add(Attention());
        cmd.Subcommands.Add(ModelCommand("prefill", "Single pre-fill of --tokens tokens (tokens/s)"));
        cmd.Subcommands.Add(ModelCommand("decode", "Greedy decode of --steps tokens after a --tokens pre-fill (tokens/s)"));
        cmd.Subcommands.Add(Train());
        return cmd;
    }

    /// <summary><c>kvnb bench --vs-torch</c>: ours, LibTorch's and the ratio for pre-fill, decode, training, one attention
    /// layer and GEMM, on the same weights and threads, plus each side's peak memory at pre-fill.</summary>
    private static void AddVsTorch(Command cmd)
    {
        var vsTorch = new Option<bool>("--vs-torch") { Description = "Run our engine and LibTorch 2.10 (TorchSharp, CPU) side by side on the same weights and threads" };
        var model = new Option<string?>("--model") { Description = "Model folder (default: a random 4-layer d256 model, 8 heads of 32, SwiGLU 688, vocab 512: data/configs/bench-4l.json)" };
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 4096, Description = "Context of pre-fill and decode, training sequence and attention length" };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 128, Description = "Decode steps timed" };
        var gemm = new Option<int>("--gemm") { DefaultValueFactory = _ => 2048, Description = "GEMM size n (n × n × n)" };
        var threads = Threads();
        var json = Cli.JsonOption();
        foreach (var o in new Option[] { vsTorch, model, tokens, steps, gemm, threads, json }) cmd.Options.Add(o);
        cmd.SetAction(p => Cli.Run(() =>
        {
            if (!p.GetValue(vsTorch)) throw new ArgumentException("choose a benchmark (kvnb bench gemm|attention|prefill|decode|train) or --vs-torch");
            if (p.GetValue(threads) < 1) throw new ArgumentException("--threads must be ≥ 1");
            var peer = TorchPeerLoader.Load();
            string? dir = p.GetValue(model);
            var weights = dir is not null ? LlamaWeights.Load(dir) : LlamaWeights.Random(ModelBench.DefaultConfig(), seed: 1);
            string name = dir is null ? "bench-4l (random)" : Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/'));
            bool asJson = p.GetValue(json);
            var r = VsTorchBench.Run(peer, weights, name, p.GetValue(tokens), p.GetValue(steps), p.GetValue(threads), p.GetValue(gemm),
                asJson ? null : what => Console.Error.WriteLine($"  {what} …"));
            if (asJson) { Cli.WriteJson(r); return 0; }
            Console.WriteLine($"{r.Model}, {r.Threads} threads; LibTorch: {r.Torch}");
            Console.WriteLine($"| figure | unit | ours | TorchSharp | ratio |");
            Console.WriteLine($"| --- | --- | --- | --- | --- |");
            foreach (var row in r.Rows)
                Console.WriteLine($"| {row.Figure} | {row.Unit} | {row.Ours:N0} | {row.Torch:N0} | {row.Ratio:F2}× |");
            Console.WriteLine($"process peak memory at pre-fill: ours {r.OursPrefillPeakBytes / 1e6:N0} MB, TorchSharp {r.TorchPrefillPeakBytes / 1e6:N0} MB");
            return 0;
        }));
    }

    private static Option<int> Threads() => new("--threads") { Description = "Threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };

    private static Command Gemm()
    {
        var m = new Option<int>("--m") { DefaultValueFactory = _ => 4096, Description = "Rows of A" };
        var n = new Option<int>("--n") { DefaultValueFactory = _ => 768, Description = "Rows of B (output columns)" };
        var k = new Option<int>("--k") { DefaultValueFactory = _ => 256, Description = "Inner dimension" };
        var packed = new Option<bool>("--packed") { Description = "The inference GEMM: B packed once (as at model load), rows in tiles of 96 over the threads" };
        var threads = Threads();
        var json = Cli.JsonOption();
        var cmd = new Command("gemm", "C = A·Bᵀ (the inference shape); GFLOP/s and fraction of peak") { m, n, k, packed, threads, json };
        cmd.SetAction(p => Cli.Run(() =>
        {
            int mm = p.GetValue(m), nn = p.GetValue(n), kk = p.GetValue(k), t = p.GetValue(threads);
            if (mm <= 0 || nn <= 0 || kk <= 0 || t <= 0) throw new ArgumentException("--m, --n, --k and --threads must be positive");
            Print(p.GetValue(packed) ? KernelBench.PackedGemm(mm, nn, kk, t) : KernelBench.Gemm(mm, nn, kk, t), p.GetValue(json));
            return 0;
        }));
        return cmd;
    }

    private static Command Attention()
    {
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 8192, Description = "Sequence length (single pre-fill)" };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 8 };
        var kvHeads = new Option<int>("--kv-heads") { DefaultValueFactory = _ => 8 };
        var headDim = new Option<int>("--head-dim") { DefaultValueFactory = _ => 32 };
        var threads = Threads();
        var json = Cli.JsonOption();
        var cmd = new Command("attention", "Causal attention of one layer; GFLOP/s (4·headDim per visible pair) and fraction of peak") { tokens, heads, kvHeads, headDim, threads, json };
        cmd.SetAction(p => Cli.Run(() =>
        {
            int T = p.GetValue(tokens), h = p.GetValue(heads), g = p.GetValue(kvHeads), hd = p.GetValue(headDim), t = p.GetValue(threads);
            if (T <= 0 || h <= 0 || g <= 0 || hd <= 0 || t <= 0 || h % g != 0) throw new ArgumentException("sizes must be positive and --heads a multiple of --kv-heads");
            Print(KernelBench.Attention(T, h, g, hd, t), p.GetValue(json));
            return 0;
        }));
        return cmd;
    }

    private static Command ModelCommand(string kind, string description)
    {
        var model = new Option<string?>("--model") { Description = "Model folder (default: a random 4-layer d256 model, 8 heads of 32, SwiGLU 688, vocab 512)" };
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 4096, Description = "Pre-fill length" };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 128, Description = "decode: tokens to generate" };
        var breakdown = new Option<bool>("--breakdown") { Description = "Also print seconds per op (1 thread: thread CPU time)" };
        var kvHeads = new Option<int>("--kv-heads") { DefaultValueFactory = _ => 8, Description = "KV heads of the default model (8 query heads; fewer = GQA)" };
        var threads = Threads();
        var json = Cli.JsonOption();
        var cmd = new Command(kind, description) { model, tokens, threads, json };
        cmd.Options.Add(breakdown);
        cmd.Options.Add(kvHeads);
        if (kind == "decode") cmd.Options.Add(steps);
        cmd.SetAction(p => Cli.Run(() =>
        {
            int T = p.GetValue(tokens), t = p.GetValue(threads);
            if (T <= 0 || t <= 0) throw new ArgumentException("--tokens and --threads must be positive");
            int g = p.GetValue(kvHeads);
            if (g <= 0 || 8 % g != 0) throw new ArgumentException("--kv-heads must divide the 8 query heads");
            var weights = p.GetValue(model) is { } dir ? LlamaWeights.Load(dir) : LlamaWeights.Random(ModelBench.DefaultConfig(g), seed: 1);
            var r = kind == "prefill" ? ModelBench.Prefill(weights, T, t, breakdown: p.GetValue(breakdown))
                                      : ModelBench.Decode(weights, T, Math.Max(1, p.GetValue(steps)), t, p.GetValue(breakdown));
            if (p.GetValue(json)) { Cli.WriteJson(r); return 0; }
            Console.WriteLine($"{r.Kind,-8} {r.ContextTokens} tokens context, {r.TimedTokens} timed, {r.Threads} threads: {r.TokensPerSecond:N0} tokens/s, " +
                              $"{r.Gflops:F1} GFLOP/s = {r.FractionOfPeak:P1} of the {r.PeakGflops:F1} GFLOP/s FMA peak ({r.Seconds * 1e3:F0} ms)");
            PrintBreakdown(r.Breakdown);
            return 0;
        }));
        return cmd;
    }

    private static Command Train()
    {
        var model = new Option<string?>("--model") { Description = "Model folder (default: a random 4-layer d256 model, 8 heads of 32, SwiGLU 688, vocab 512)" };
        var tokens = new Option<int>("--tokens") { DefaultValueFactory = _ => 4096, Description = "Tokens per sequence" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 1, Description = "Sequences per step (laid back to back)" };
        var loss = new Option<int>("--loss-positions") { DefaultValueFactory = _ => 8, Description = "Loss positions per sequence (LM head rows)" };
        var optimizer = new Option<bool>("--optimizer") { Description = "Include one AdamW update in each step" };
        var breakdown = new Option<bool>("--breakdown") { Description = "Also print seconds per op" };
        var repeats = new Option<int>("--repeats") { DefaultValueFactory = _ => 3, Description = "Timed steps (best is reported)" };
        var threads = Threads();
        var json = Cli.JsonOption();
        var cmd = new Command("train", "One training step (ZeroGrad + forward + backward [+ AdamW]): tokens/s, GFLOP/s and fraction of peak")
            { model, tokens, batch, loss, optimizer, breakdown, repeats, threads, json };
        cmd.SetAction(p => Cli.Run(() =>
        {
            int T = p.GetValue(tokens), b = p.GetValue(batch), t = p.GetValue(threads), lp = p.GetValue(loss), rep = p.GetValue(repeats);
            if (T <= 0 || b <= 0 || t <= 0 || lp <= 0 || rep <= 0) throw new ArgumentException("--tokens, --batch, --loss-positions, --repeats and --threads must be positive");
            string? dir = p.GetValue(model);
            LlamaWeights Weights() => dir is not null ? LlamaWeights.Load(dir) : LlamaWeights.Random(ModelBench.DefaultConfig(), seed: 1);
            // the full pass (every row of every layer), then what training runs: the last layer on the loss rows only
            var full = TrainBench.Run(Weights(), T, b, t, lp, p.GetValue(optimizer), rep, p.GetValue(breakdown), lossRowsOnly: false);
            var r = TrainBench.Run(Weights(), T, b, t, lp, p.GetValue(optimizer), rep, p.GetValue(breakdown));
            if (p.GetValue(json)) { Cli.WriteJson(new { FullPass = full, LossRows = r, Speedup = full.Seconds / r.Seconds }); return 0; }
            foreach (var x in new[] { full, r })
            {
                Console.WriteLine($"train    {x.Batch} × {x.SeqLen} tokens, loss at {x.LossPositions} per sequence, {(x.OptimizerStep ? "fwd+bwd+AdamW" : "fwd+bwd")}, " +
                                  $"{(x.LossRowsPath ? "last layer on the loss rows" : "full pass")}, {x.Threads} threads: " +
                                  $"{x.TokensPerSecond:N0} tokens/s, {x.Gflops:F1} GFLOP/s = {x.FractionOfPeak:P1} of the {x.PeakGflops:F1} GFLOP/s FMA peak ({x.Seconds * 1e3:F0} ms/step)");
                PrintBreakdown(x.Breakdown);
            }
            Console.WriteLine($"last layer on the loss rows: {full.Seconds / r.Seconds:F2}× the full pass's speed (same loss and gradients, bit for bit)");
            return 0;
        }));
        return cmd;
    }

    private static void PrintBreakdown(IReadOnlyList<TrainBenchOp>? ops)
    {
        if (ops is null) return;
        double total = ops.Sum(o => o.Seconds);
        foreach (var o in ops.OrderByDescending(o => o.Seconds))
            Console.WriteLine($"  {o.Op,-20} {o.Seconds * 1e3,9:F1} ms  {o.Seconds / total,6:P1}");
    }

    private static void Print(KernelBenchResult r, bool json)
    {
        if (json) Cli.WriteJson(r);
        else Console.WriteLine($"{r.Kernel,-10} {r.Shape}, {r.Threads} threads: {r.Gflops:F1} GFLOP/s = {r.FractionOfPeak:P1} of the {r.PeakGflops:F1} GFLOP/s FMA peak ({r.Seconds * 1e3:F2} ms)");
    }
}
