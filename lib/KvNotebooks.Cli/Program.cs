using System.CommandLine;
using KvNotebooks.Cli.Commands;

namespace KvNotebooks.Cli;

/// <summary>Entry point of <c>kvnb</c>: one file per command under Commands/.</summary>
public static class Program
{
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("kvnb — KV-footprint workbench: footprints, eviction runs, training, sweeps and notebooks");
        root.Subcommands.Add(FootprintCommand.Create());
        root.Subcommands.Add(InitCommand.Create());
        root.Subcommands.Add(LogitsCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(MasksCommand.Create());
        root.Subcommands.Add(ProbeCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(SweepCommand.Create());
        root.Subcommands.Add(TasksCommand.Create());
        root.Subcommands.Add(NotebooksCommand.Create());
        return root;
    }
}
