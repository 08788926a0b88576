using System.Diagnostics;

namespace KvNotebooks.Validation.Fuzz;

/// <summary>What one input did.</summary>
public enum FuzzOutcomeKind { TypedError, CorrectLoad, Violation }

/// <summary>One input's result; for a violation, its kind (hang, allocation, generic exception, silent bad load,
/// partial load) and detail, with the input's bytes so it can be kept as a regression case.</summary>
public sealed record FuzzOutcome(string Format, int Seed, string Mutators, FuzzOutcomeKind Kind, string Detail, Mutation? Input)
{
    public bool Acceptable => Kind != FuzzOutcomeKind.Violation;
}

/// <summary>Counts for one format.</summary>
public sealed record FuzzReport(string Format, int Inputs, int TypedErrors, int CorrectLoads, IReadOnlyList<FuzzOutcome> Violations, TimeSpan Elapsed);

/// <summary>
/// Runs a <see cref="FuzzFormat"/>'s loader on damaged inputs in a scratch folder. Input <c>seed</c> chooses one
/// to three mutators and their randomness, so every outcome can be replayed from (format, seed). A load must
/// end within <see cref="Timeout"/>, allocate at most the format's cap, and either raise an
/// <see cref="InputException"/> that names its file or return a value the format's check accepts.
/// </summary>
public sealed class FuzzRunner : IDisposable
{
    private readonly FuzzFormat _format;
    private readonly string _dir;
    private readonly IReadOnlyDictionary<string, byte[]> _seed;
    private bool _poisoned;

    public FuzzRunner(FuzzFormat format, string? workDir = null)
    {
        _format = format;
        _dir = workDir ?? Directory.CreateTempSubdirectory($"kvnb-fuzz-{format.Name}-").FullName;
        _seed = format.Seed();
        Directory.CreateDirectory(_dir);
        foreach (var (name, bytes) in _seed) File.WriteAllBytes(Path.Combine(_dir, name), bytes);
    }

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The damaged input for <paramref name="seed"/> (deterministic).</summary>
    public Mutation Mutate(int seed)
    {
        var rng = new Random(seed);
        var bytes = _seed[_format.Target];
        var names = new List<string>();
        int steps = 1 + rng.Next(3);
        for (int s = 0, tries = 0; s < steps && tries < 20; tries++)
        {
            // One input in forty is a folder in place of the file.
            if (rng.Next(40) == 0) return Mutation.Folder(string.Join("+", names.Append("folder")));
            var m = _format.Mutators[rng.Next(_format.Mutators.Count)];
            var next = m.Apply(bytes, rng);
            if (next is null) continue;
            bytes = next;
            names.Add(m.Name);
            s++;
        }
        return new Mutation(string.Join("+", names), bytes);
    }

    /// <summary>Runs the loader on input <paramref name="seed"/>.</summary>
    public FuzzOutcome RunOne(int seed) => Run(seed, Mutate(seed));

    /// <summary>Runs the loader on a given input (a regression case).</summary>
    public FuzzOutcome Run(int seed, Mutation input)
    {
        if (_poisoned) throw new InvalidOperationException("an earlier load hung; this runner's folder is still in use");
        string target = Path.Combine(_dir, _format.Target);
        if (Directory.Exists(target)) Directory.Delete(target, true);
        if (input.AsFolder) { File.Delete(target); Directory.CreateDirectory(target); }
        else File.WriteAllBytes(target, input.Bytes!);

        FuzzOutcome Outcome(FuzzOutcomeKind kind, string detail) => new(_format.Name, seed, input.Mutator, kind, detail, input);
        var task = Task.Factory.StartNew(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                object? value = _format.Load(_dir);
                return (Value: value, Error: (Exception?)null, Allocated: GC.GetAllocatedBytesForCurrentThread() - before);
            }
            catch (Exception e)
            {
                return (Value: null, Error: e, Allocated: GC.GetAllocatedBytesForCurrentThread() - before);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!task.Wait(Timeout))
        {
            _poisoned = true;
            return Outcome(FuzzOutcomeKind.Violation, $"hang: no result after {Timeout.TotalSeconds:F0} s");
        }
        var (value, error, allocated) = task.Result;
        // The cap grows with the input: reading a file may cost a few times its size, never unbounded.
        long cap = _format.AllocationCap + 16L * (input.Bytes?.Length ?? 0);
        if (allocated > cap)
            return Outcome(FuzzOutcomeKind.Violation, $"allocation: {allocated / (1 << 20):N0} MiB, cap {cap / (1 << 20):N0} MiB");
        switch (error)
        {
            case null:
                string? wrong;
                try { wrong = _format.Check(value); }
                catch (Exception e) { wrong = $"the loaded value fails its check with {e.GetType().Name}: {e.Message}"; }
                return wrong is null ? Outcome(FuzzOutcomeKind.CorrectLoad, "") : Outcome(FuzzOutcomeKind.Violation, $"silent bad load: {wrong}");
            case InputException ie when ie.File.Length > 0:
                return Outcome(FuzzOutcomeKind.TypedError, ie.Message);
            case FuzzViolationException v:
                return Outcome(FuzzOutcomeKind.Violation, $"{v.Kind}: {v.Message}");
            default:
                var frame = new StackTrace(error, false).GetFrame(0)?.GetMethod();
                return Outcome(FuzzOutcomeKind.Violation,
                    $"generic exception: {error.GetType().Name}: {error.Message} at {frame?.DeclaringType?.Name}.{frame?.Name}");
        }
    }

    /// <summary>Runs inputs <paramref name="firstSeed"/> … + <paramref name="count"/> − 1; stops early after a hang.</summary>
    public FuzzReport Run(int count, int firstSeed = 0, Action<FuzzOutcome>? onViolation = null)
    {
        var clock = Stopwatch.StartNew();
        int typed = 0, loads = 0, inputs = 0;
        var violations = new List<FuzzOutcome>();
        for (int i = 0; i < count && !_poisoned; i++)
        {
            var o = RunOne(unchecked(firstSeed + i));
            inputs++;
            switch (o.Kind)
            {
                case FuzzOutcomeKind.TypedError: typed++; break;
                case FuzzOutcomeKind.CorrectLoad: loads++; break;
                default: violations.Add(o); onViolation?.Invoke(o); break;
            }
        }
        return new FuzzReport(_format.Name, inputs, typed, loads, violations, clock.Elapsed);
    }

    public void Dispose()
    {
        if (_poisoned) return;   // a hung load may still be reading the folder
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
