using System.CommandLine;
using KvNotebooks.Cli.Commands;
using KvNotebooks.Eviction;
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

    public static int Main(string[] args) => Run(args);

    /// <summary>Runs one command line with <paramref name="registry"/>'s methods (default: the project's own).</summary>
    public static int Run(string[] args, MethodRegistry? registry = null)
    {
        var parse = BuildRoot(registry).Parse(args);
        using (NonFinite.Allow(parse.GetValue(AllowNonFinite))) return parse.Invoke();
    }

    /// <param name="registry">The methods the commands know (default: the project's own; a test or a user's program
    /// can add its own with <see cref="MethodRegistry.With"/>).</param>
    public static RootCommand BuildRoot(MethodRegistry? registry = null)
    {
        registry ??= MethodRegistry.BuiltIn;
        var root = new RootCommand("kvnb — KV-footprint workbench: footprints, eviction runs, training, sweeps and notebooks");
        root.Options.Add(AllowNonFinite);
        root.Subcommands.Add(FootprintCommand.Create(registry));
        root.Subcommands.Add(MethodsCommand.Create(registry));
        root.Subcommands.Add(InitCommand.Create());
        root.Subcommands.Add(LogitsCommand.Create(registry));
        root.Subcommands.Add(RunCommand.Create(registry));
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(MasksCommand.Create());
        root.Subcommands.Add(ProbeCommand.Create());
        root.Subcommands.Add(EvalCommand.Create(registry));
        root.Subcommands.Add(SweepCommand.Create(registry));
        root.Subcommands.Add(TasksCommand.Create());
        root.Subcommands.Add(NotebooksCommand.Create());
        root.Subcommands.Add(FuzzCommand.Create());
        return root;
    }
}
