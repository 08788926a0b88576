using System.Diagnostics;

namespace KvNotebooks.Bench;

/// <summary>
/// Where a training step's time goes: <see cref="Mark"/> after each op charges the time since the
/// previous mark to that op's name. Off unless a benchmark installs one (a null timer costs a branch).
/// </summary>
public sealed class StepTimer
{
    private readonly Stopwatch _clock = new();
    private readonly Dictionary<string, double> _seconds = new();
    private readonly List<string> _order = new();
    private double _last;

    /// <summary>Starts (or restarts) the interval that the next <see cref="Mark"/> ends.</summary>
    public void Start()
    {
        _clock.Start();
        _last = _clock.Elapsed.TotalSeconds;
    }

    /// <summary>Charges the time since the previous mark (or <see cref="Start"/>) to <paramref name="op"/>.</summary>
    public void Mark(string op)
    {
        double now = _clock.Elapsed.TotalSeconds;
        if (!_seconds.TryGetValue(op, out double s)) _order.Add(op);
        _seconds[op] = s + now - _last;
        _last = now;
    }

    public void Clear()
    {
        _seconds.Clear();
        _order.Clear();
    }

    /// <summary>(op, seconds) in the order ops were first seen.</summary>
    public IReadOnlyList<(string Op, double Seconds)> Totals => _order.Select(o => (o, _seconds[o])).ToList();
}
