namespace KvNotebooks.Tests.Training;

/// <summary>Central finite differences on fp32 tensors, compared with an analytic gradient.</summary>
internal static class GradCheck
{
    public static float[] Random(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>Σ w ⊙ y in double: turns an op's output into a scalar whose gradient w.r.t. y is w.</summary>
    public static double Dot(ReadOnlySpan<float> w, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < w.Length; i++) s += (double)w[i] * y[i];
        return s;
    }

    /// <summary>Numerical dL/dx[i] for the listed indices (all when null) by central differences
    /// (the real fp32 step is used as denominator), then asserts
    /// ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) &lt; tol over those indices.</summary>
    public static double Check(string name, float[] x, ReadOnlySpan<float> analytic, Func<double> loss,
        float h = 1e-2f, double tol = 3e-3, IReadOnlyList<int>? indices = null, double floor = 1e-6)
    {
        indices ??= Enumerable.Range(0, x.Length).ToArray();
        double diff = 0, na = 0, nn = 0;
        foreach (int i in indices)
        {
            float x0 = x[i];
            float xp = x0 + h, xm = x0 - h;
            x[i] = xp; double lp = loss();
            x[i] = xm; double lm = loss();
            x[i] = x0;
            double num = (lp - lm) / ((double)xp - xm);
            double an = analytic[i];
            diff += (an - num) * (an - num); na += an * an; nn += num * num;
        }
        double rel = Math.Sqrt(diff) / Math.Max(Math.Max(Math.Sqrt(na), Math.Sqrt(nn)), floor);
        Assert.True(rel < tol, $"{name}: relative error {rel:E3} ≥ {tol:E1} (‖analytic‖ = {Math.Sqrt(na):E3}, ‖numeric‖ = {Math.Sqrt(nn):E3})");
        Assert.True(Math.Sqrt(na) > floor, $"{name}: analytic gradient is (near) zero, the check would be vacuous");
        return rel;
    }
}
