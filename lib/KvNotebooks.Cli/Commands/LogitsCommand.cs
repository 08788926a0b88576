using System.CommandLine;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb logits</c>: fp32 logits of every prompt position under a method, to check a port
/// against another implementation.</summary>
public static class LogitsCommand
{
    public static Command Create(MethodRegistry registry)
    {
        var model = new Option<string>("--model") { Description = "Model folder (Hugging Face layout)", Required = true };
        var tokens = new Option<string>("--tokens") { Description = "Prompt token ids, e.g. \"1 2 3\"", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors file: tensor 'logits' [tokens × vocab] fp32", Required = true };
        var json = Cli.JsonOption();
        var methodOptions = new MethodOptions(registry);
        var cmd = new Command("logits", "Write the fp32 logits of every prompt position (safetensors) under an eviction method");
        cmd.Options.Add(model);
        cmd.Options.Add(tokens);
        methodOptions.AddTo(cmd);
        cmd.Options.Add(output);
        cmd.Options.Add(json);
        cmd.SetAction(p => Cli.Run(() =>
        {
            var prompt = Cli.ParseTokens(p.GetValue(tokens)!);
            var weights = LlamaWeights.Load(p.GetValue(model)!);
            var chunking = methodOptions.Chunking(p);
            var spec = methodOptions.Spec(p, chunked: !chunking.IsNone);
            using var session = new Session(new LlamaModel(weights), spec, chunking);
            var method = session.Method;
            int V = weights.Config.VocabSize;
            var logits = new float[(long)prompt.Length * V <= int.MaxValue ? prompt.Length * V
                : throw new ArgumentException($"{prompt.Length} tokens × vocab {V} logits do not fit one array")];
            session.Prefill(prompt, logits);
            string path = p.GetValue(output)!;
            Safetensors.Write(path, [("logits", [prompt.Length, V], logits)], SafetensorsDtype.F32,
                new Dictionary<string, string> { ["method"] = method.Name, ["chunk"] = session.Chunking.EffectiveSize(prompt.Length).ToString(System.Globalization.CultureInfo.InvariantCulture) });
            if (p.GetValue(json)) Cli.WriteJson(new { output = path, shape = new[] { prompt.Length, V }, method = method.Name, footprint = session.Meter.Footprint });
            else Console.WriteLine($"wrote logits [{prompt.Length} × {V}] to {path} (method {method.Name}, footprint {session.Meter.Footprint * 100:F2} %)");
            return Cli.CheckFinite(logits, $"{path}: logits");
        }));
        return cmd;
    }
}
