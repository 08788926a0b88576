using System.CommandLine;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb bench</c> (not implemented yet).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "(not implemented yet)");
        cmd.SetAction(_ => { Console.Error.WriteLine("kvnb bench: not implemented yet"); return 1; });
        return cmd;
    }
}
