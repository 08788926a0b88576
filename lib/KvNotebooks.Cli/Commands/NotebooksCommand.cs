using System.CommandLine;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb notebooks</c> (not implemented yet).</summary>
public static class NotebooksCommand
{
    public static Command Create()
    {
        var cmd = new Command("notebooks", "(not implemented yet)");
        cmd.SetAction(_ => { Console.Error.WriteLine("kvnb notebooks: not implemented yet"); return 1; });
        return cmd;
    }
}
