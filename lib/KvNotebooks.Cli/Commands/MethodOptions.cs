using System.CommandLine;
using KvNotebooks.Eviction;
using KvNotebooks.Model;

namespace KvNotebooks.Cli.Commands;

/// <summary>The options that choose an eviction method and a chunk size, shared by run and logits.</summary>
internal sealed class MethodOptions
{
    public readonly Option<int?> Chunk = new("--chunk") { Description = "Pre-fill chunk size C (default: a single pre-fill)" };
    public readonly Option<string> Method = new("--method") { Description = "full | streaming | headmask", DefaultValueFactory = _ => "full" };
    public readonly Option<int> Sink = new("--sink") { Description = "Streaming heads: sink tokens S", DefaultValueFactory = _ => 128 };
    public readonly Option<int> Window = new("--window") { Description = "Streaming heads: local window W", DefaultValueFactory = _ => 1024 };
    public readonly Option<string?> Masks = new("--masks") { Description = "headmask: 0/1 TSV, one row per layer, one column per KV head (1 = full)" };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(Chunk);
        cmd.Options.Add(Method);
        cmd.Options.Add(Sink);
        cmd.Options.Add(Window);
        cmd.Options.Add(Masks);
    }

    public IEvictionMethod CreateMethod(ParseResult p, LlamaConfig config) =>
        MethodFactory.Create(p.GetValue(Method)!, config, p.GetValue(Sink), p.GetValue(Window), p.GetValue(Masks));

    public int ChunkSize(ParseResult p)
    {
        int? c = p.GetValue(Chunk);
        if (c is <= 0) throw new ArgumentException($"--chunk must be positive (got {c})");
        return c ?? int.MaxValue;
    }
}
