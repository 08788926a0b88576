using System.CommandLine;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb footprint</c> (not implemented yet).</summary>
public static class FootprintCommand
{
    public static Command Create()
    {
        var cmd = new Command("footprint", "(not implemented yet)");
        cmd.SetAction(_ => { Console.Error.WriteLine("kvnb footprint: not implemented yet"); return 1; });
        return cmd;
    }
}
