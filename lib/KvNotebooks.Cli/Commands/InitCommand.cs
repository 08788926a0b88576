using System.CommandLine;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb init</c> (not implemented yet).</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var cmd = new Command("init", "(not implemented yet)");
        cmd.SetAction(_ => { Console.Error.WriteLine("kvnb init: not implemented yet"); return 1; });
        return cmd;
    }
}
