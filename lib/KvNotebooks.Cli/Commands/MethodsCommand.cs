using System.CommandLine;
using KvNotebooks.Eviction;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb methods list</c>: every method of the registry with its kind, knobs and what it does.</summary>
public static class MethodsCommand
{
    public static Command Create(MethodRegistry registry)
    {
        var json = Cli.JsonOption();
        var list = new Command("list", "Every KV method: name, kind, settings (with defaults) and what it does") { json };
        list.SetAction(p => Cli.Run(() =>
        {
            if (p.GetValue(json))
                Cli.WriteJson(registry.Methods.Select(m => new
                {
                    name = m.Name, aliases = m.Aliases, kind = m.Kind.ToString(), summary = m.Summary, runs = m.Runs, accountant = m.Footprint is not null,
                    knobs = m.Knobs.Select(k => new { option = "--" + k.Name, key = k.Key, type = k.ValueType.Name.ToLowerInvariant(), @default = k.DefaultValue, description = k.Description }),
                    schedule = m.Kind == MethodKind.ScoresTokens,
                }));
            else
                foreach (var m in registry.Methods)
                {
                    string names = m.Aliases.Count > 0 ? $"{m.Name} ({string.Join(", ", m.Aliases)})" : m.Name;
                    Console.WriteLine($"{names,-22} {m.Kind,-15} {m.Summary}");
                    var settings = m.Knobs.Select(k => k.DefaultValue is { } d ? $"--{k.Name} {k.Format(d)}" : $"--{k.Name} FILE").ToList();
                    if (m.Kind == MethodKind.ScoresTokens) settings.Insert(0, "--schedule postfill|naive|patched --evict p");
                    if (settings.Count > 0) Console.WriteLine($"{"",-22} {"",-15} {string.Join("  ", settings)}");
                    if (!m.Runs) Console.WriteLine($"{"",-22} {"",-15} (the accountant counts it; the engine cannot run it yet)");
                }
            return 0;
        }));
        return new Command("methods", "The KV methods this build knows") { list };
    }
}
