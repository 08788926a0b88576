using System.CommandLine;
using KvNotebooks.Cli.Commands;
using KvNotebooks.Validation;

namespace KvNotebooks.Cli;

/// <summary>Entry point of <c>kvnb</c>: one file per command under Commands/.</summary>
public static class Program
{
    /// <summary>Accept NaN/±Inf in weights and results (refused by default: a warning and a non-zero exit).</summary>
    public static readonly Option<bool> AllowNonFinite = new("--allow-nonfinite")
    {
        Description = "Load weights that hold NaN/±Inf and accept such results (default: refuse, exit code 2 or 3)",
        Recursive = true,
    };

    public static int Main(string[] args)
    {
        var parse = BuildRoot().Parse(args);
        using (NonFinite.Allow(parse.GetValue(AllowNonFinite))) return parse.Invoke();
    }

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("kvnb — KV-footprint workbench: footprints, eviction runs, training, sweeps and notebooks");
        root.Options.Add(AllowNonFinite);
        root.Subcommands.Add(FootprintCommand.Create());
        root.Subcommands.Add(InitCommand.Create());
        root.Subcommands.Add(LogitsCommand.Create());
        root.Subcommands.Add(RunCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(ProbeCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(SweepCommand.Create());
        root.Subcommands.Add(TasksCommand.Create());
        root.Subcommands.Add(NotebooksCommand.Create());
        root.Subcommands.Add(FuzzCommand.Create());
        return root;
    }
}
