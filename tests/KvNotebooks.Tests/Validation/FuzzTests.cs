using FsCheck;
using FsCheck.Fluent;
using KvNotebooks.Cli.Commands;
using KvNotebooks.Validation;
using KvNotebooks.Validation.Fuzz;

namespace KvNotebooks.Tests.Validation;

/// <summary>
/// Property-based fuzzing of every loader: for damaged inputs drawn by FsCheck (a seed choosing one to three of our
/// mutators), the outcome is a typed error naming its file or a load that passes the format's check, within the
/// runner's time and allocation caps. 300 inputs per format here (3,000 in all, a few seconds, the same ones every
/// run);
/// <c>kvnb fuzz --count N</c> runs more.
/// </summary>
public sealed class FuzzTests
{
    public const int InputsPerFormat = 300;

    public static TheoryData<string> Formats() => new(FuzzCommand.Formats.Select(f => f.Name));

    private static FuzzFormat Format(string name) => FuzzCommand.Formats.Single(f => f.Name == name);

    [Theory]
    [MemberData(nameof(Formats))]
    public void Every_damaged_input_is_a_typed_error_or_a_correct_load(string name)
    {
        using var runner = new FuzzRunner(Format(name)) { Timeout = TimeSpan.FromSeconds(30) };
        var outcomes = new List<FuzzOutcome>();
        var property = Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), (int seed) =>
        {
            var o = runner.RunOne(seed);
            outcomes.Add(o);
            return o.Acceptable.Label($"{name} seed {seed} [{o.Mutators}]: {o.Detail}");
        });
        // A fixed FsCheck seed: CI sees the same inputs every run (kvnb fuzz --seed explores others).
        var replay = new Replay(new Rnd(0x5EED_0030UL + (ulong)name.Length, 0x9E3779B97F4A7C15UL), Microsoft.FSharp.Core.FSharpOption<int>.None);
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(InputsPerFormat).WithReplay(Microsoft.FSharp.Core.FSharpOption<Replay>.Some(replay)), property);
        Assert.True(outcomes.Count >= InputsPerFormat);
        // The mutators must bite: most inputs are refused, and some still load.
        Assert.True(outcomes.Count(o => o.Kind == FuzzOutcomeKind.TypedError) > outcomes.Count / 2, $"{name}: too few typed errors");
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void The_undamaged_seed_loads_and_passes_its_check(string name)
    {
        var format = Format(name);
        using var runner = new FuzzRunner(format);
        var o = runner.Run(0, new Mutation("none", format.Seed()[format.Target]));
        Assert.Equal(FuzzOutcomeKind.CorrectLoad, o.Kind);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void A_folder_in_place_of_the_file_says_so(string name)
    {
        using var runner = new FuzzRunner(Format(name));
        var o = runner.Run(0, Mutation.Folder("folder"));
        Assert.Equal(FuzzOutcomeKind.TypedError, o.Kind);
        Assert.Contains("is a folder", o.Detail);
    }

    [Fact]
    public void Inputs_replay_from_their_seed()
    {
        using var a = new FuzzRunner(Format("config"));
        using var b = new FuzzRunner(Format("config"));
        for (int seed = 0; seed < 20; seed++)
        {
            var (x, y) = (a.Mutate(seed), b.Mutate(seed));
            Assert.Equal(x.Mutator, y.Mutator);
            Assert.Equal(x.Bytes, y.Bytes);
        }
    }

    // ---- the runner catches what it must ----

    private static FuzzFormat Fake(Func<string, object?> load, Func<object?, string?>? check = null, long cap = 1 << 20) => new()
    {
        Name = "fake", Target = "f.txt", Seed = () => new Dictionary<string, byte[]> { ["f.txt"] = [1, 2, 3] },
        Mutators = Mutators.Bytes, Load = load, Check = check ?? (_ => null), AllocationCap = cap,
    };

    [Fact]
    public void The_runner_reports_generic_exceptions_silent_bad_loads_hangs_and_allocations()
    {
        using (var r = new FuzzRunner(Fake(_ => throw new InvalidOperationException("boom"))))
            Assert.Contains("generic exception: InvalidOperationException", r.RunOne(1).Detail);
        using (var r = new FuzzRunner(Fake(_ => 5, v => (int)v! == 5 ? "five is wrong" : null)))
            Assert.Contains("silent bad load: five is wrong", r.RunOne(1).Detail);
        using (var r = new FuzzRunner(Fake(_ => new byte[64 << 20], cap: 1 << 20)))
            Assert.Contains("allocation", r.RunOne(1).Detail);
        using (var r = new FuzzRunner(Fake(_ => throw new InputException("", "x", "no file named"))))
            Assert.Equal(FuzzOutcomeKind.Violation, r.RunOne(1).Kind);   // a typed error must name its file
        using (var r = new FuzzRunner(Fake(dir => throw new InputException(dir, "x", "bad"))))
            Assert.Equal(FuzzOutcomeKind.TypedError, r.RunOne(1).Kind);
        var gate = new ManualResetEventSlim();
        var hang = new FuzzRunner(Fake(_ => { gate.Wait(); return null; })) { Timeout = TimeSpan.FromMilliseconds(200) };
        var report = hang.Run(5);
        Assert.Single(report.Violations);                                 // the run stops at the hang
        Assert.Contains("hang", report.Violations[0].Detail);
        gate.Set();
    }
}
