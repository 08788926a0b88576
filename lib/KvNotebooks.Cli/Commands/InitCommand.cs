using System.CommandLine;
using KvNotebooks.Model;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb init</c>: a random model folder in Hugging Face layout.</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var config = new Option<string>("--config") { Description = "A Hugging Face config.json", Required = true };
        var seed = new Option<int>("--seed") { Description = "Random seed", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "Output folder (config.json + model.safetensors)", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "f32 | f16 | bf16", DefaultValueFactory = _ => "f32" };
        var json = Cli.JsonOption();
        var cmd = new Command("init", "Write a randomly initialised model (Hugging Face layout)") { config, seed, output, dtype, json };
        cmd.SetAction(p => Cli.Run(() =>
        {
            var dt = p.GetValue(dtype)!.ToLowerInvariant() switch
            {
                "f32" => SafetensorsDtype.F32, "f16" => SafetensorsDtype.F16, "bf16" => SafetensorsDtype.BF16,
                var other => throw new ArgumentException($"--dtype must be f32, f16 or bf16 (got '{other}')"),
            };
            var cfg = LlamaConfig.Load(p.GetValue(config)!);
            var weights = LlamaWeights.Random(cfg, p.GetValue(seed));
            string dir = p.GetValue(output)!;
            weights.Save(dir, dt);
            long parameters = weights.NamedTensors().Sum(t => (long)t.Data.Length);
            if (p.GetValue(json)) Cli.WriteJson(new { output = dir, parameters, dtype = dt.ToString(), config = cfg });
            else Console.WriteLine($"wrote a random {cfg.NumLayers}-layer model ({parameters:N0} parameters, {dt}) to {dir}");
            return 0;
        }));
        return cmd;
    }
}
