using System.CommandLine;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb run</c> (not implemented yet).</summary>
public static class RunCommand
{
    public static Command Create()
    {
        var cmd = new Command("run", "(not implemented yet)");
        cmd.SetAction(_ => { Console.Error.WriteLine("kvnb run: not implemented yet"); return 1; });
        return cmd;
    }
}
