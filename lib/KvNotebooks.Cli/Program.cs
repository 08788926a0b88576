using System.CommandLine;
using KvNotebooks.Cli.Commands;
using KvNotebooks.Eviction;

namespace KvNotebooks.Cli;

/// <summary>Entry point of <c>kvnb</c>: one file per command under Commands/.</summary>
public static class Program
{
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

    /// <param name="registry">The methods the commands know (default: the project's own; a test or a user's program
    /// can add its own with <see cref="MethodRegistry.With"/>).</param>
    public static RootCommand BuildRoot(MethodRegistry? registry = null)
    {
        registry ??= MethodRegistry.BuiltIn;
        var root = new RootCommand("kvnb — KV-footprint workbench: footprints, eviction runs, training, sweeps and notebooks");
        root.Subcommands.Add(FootprintCommand.Create(registry));
        root.Subcommands.Add(MethodsCommand.Create(registry));
        root.Subcommands.Add(InitCommand.Create());
        root.Subcommands.Add(LogitsCommand.Create(registry));
        root.Subcommands.Add(RunCommand.Create(registry));
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(ProbeCommand.Create());
        root.Subcommands.Add(EvalCommand.Create(registry));
        root.Subcommands.Add(SweepCommand.Create(registry));
        root.Subcommands.Add(TasksCommand.Create());
        root.Subcommands.Add(NotebooksCommand.Create());
        return root;
    }
}
