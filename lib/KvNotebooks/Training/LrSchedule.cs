namespace KvNotebooks.Training;

public enum LrDecay { Constant, Linear, Cosine }

/// <summary>
/// Learning-rate multiplier for the s-th optimizer update (s = 1, 2, …): linear warmup
/// s/WarmupSteps for s ≤ WarmupSteps, then with progress p = (s − W)/(TotalSteps − W) clamped to [0, 1]:
/// Constant 1; Linear MinLrRatio + (1 − MinLrRatio)(1 − p); Cosine MinLrRatio + (1 − MinLrRatio)·½(1 + cos πp).
/// PruLong's run: warmup 10 %, cosine to MinLrRatio 0.01 (docs/methods.md, "Head masks: DuoAttention and PruLong").
/// </summary>
public sealed record LrSchedule(int WarmupSteps = 0, int TotalSteps = 0, LrDecay Decay = LrDecay.Constant, double MinLrRatio = 0.0)
{
    public static LrSchedule Constant { get; } = new();

    public double Factor(int step)
    {
        if (step < 1) step = 1;
        if (WarmupSteps > 0 && step <= WarmupSteps) return (double)step / WarmupSteps;
        if (Decay == LrDecay.Constant) return 1.0;
        int span = TotalSteps - WarmupSteps;
        double p = span <= 0 ? 1.0 : Math.Clamp((double)(step - WarmupSteps) / span, 0.0, 1.0);
        double shape = Decay == LrDecay.Linear ? 1.0 - p : 0.5 * (1.0 + Math.Cos(Math.PI * p));
        return MinLrRatio + (1.0 - MinLrRatio) * shape;
    }
}
