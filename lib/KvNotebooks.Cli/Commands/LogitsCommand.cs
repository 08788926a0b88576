using System.CommandLine;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb logits</c> (not implemented yet).</summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var cmd = new Command("logits", "(not implemented yet)");
        cmd.SetAction(_ => { Console.Error.WriteLine("kvnb logits: not implemented yet"); return 1; });
        return cmd;
    }
}
