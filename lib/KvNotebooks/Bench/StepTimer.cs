using System.Diagnostics;

namespace KvNotebooks.Bench;

/// <summary>
/// Where a training step's time goes: <see cref="Mark"/> after each op charges the time since the
/// previous mark to that op's name; <see cref="EndStep"/> closes a step. <see cref="Totals"/> gives each
/// op's least time over the steps (on a shared machine the minimum is the least disturbed figure).
/// Off unless a benchmark installs one (a null timer costs a branch).
/// </summary>
public sealed class StepTimer
{
    private readonly Func<double> _now;
    private readonly Dictionary<string, double> _step = new(), _best = new();
    private readonly List<string> _order = new();
    private double _last;

    /// <summary>Times with <paramref name="clock"/> (seconds; default wall time). A thread-CPU-time clock
    /// makes single-threaded breakdowns immune to other processes on the machine.</summary>
    public StepTimer(Func<double>? clock = null)
    {
        if (clock is null)
        {
            var sw = Stopwatch.StartNew();
            clock = () => sw.Elapsed.TotalSeconds;
        }
        _now = clock;
    }

    /// <summary>Starts (or restarts) the interval that the next <see cref="Mark"/> ends.</summary>
    public void Start() => _last = _now();

    /// <summary>Charges the time since the previous mark (or <see cref="Start"/>) to <paramref name="op"/>.</summary>
    public void Mark(string op)
    {
        double now = _now();
        if (!_step.TryGetValue(op, out double s) && !_best.ContainsKey(op)) _order.Add(op);
        _step[op] = s + now - _last;
        _last = now;
    }

    /// <summary>Closes the current step: each op's total in it competes for that op's minimum.</summary>
    public void EndStep()
    {
        foreach (var (op, s) in _step) _best[op] = _best.TryGetValue(op, out double b) ? Math.Min(b, s) : s;
        _step.Clear();
    }

    /// <summary>(op, least seconds per step) in the order ops were first seen.</summary>
    public IReadOnlyList<(string Op, double Seconds)> Totals => _order.Where(_best.ContainsKey).Select(o => (o, _best[o])).ToList();
}
