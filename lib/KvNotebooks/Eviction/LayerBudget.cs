namespace KvNotebooks.Eviction;

/// <summary>Splitting a per-head budget over layers in integers that sum exactly.</summary>
public static class LayerBudget
{
    /// <summary>Every layer keeps the average (at most what it has).</summary>
    public static void Uniform(in BudgetInput b, Span<int> keep) => keep.Fill(Math.Clamp(b.Average, 0, b.Max));

    /// <summary>
    /// Integers proportional to <paramref name="targets"/>, each in [0, <paramref name="cap"/>], summing to
    /// exactly min(<paramref name="total"/>, layers·cap): shares above the cap are clipped and the excess
    /// goes to the others in proportion (water-filling), then largest remainders round (ties: lower layer).
    /// </summary>
    public static void Allocate(ReadOnlySpan<double> targets, long total, int cap, Span<int> result)
    {
        int L = targets.Length;
        if (result.Length != L) throw new ArgumentException("one result per target");
        cap = Math.Max(cap, 0);
        total = Math.Clamp(total, 0, (long)L * cap);
        Span<double> share = stackalloc double[L];
        Span<bool> fixedAtCap = stackalloc bool[L];
        fixedAtCap.Clear();
        while (true)
        {
            double sumFree = 0, remaining = total;
            int free = 0;
            for (int l = 0; l < L; l++)
                if (fixedAtCap[l]) remaining -= cap;
                else { sumFree += Math.Max(targets[l], 0); free++; }
            if (free == 0) break;
            bool clipped = false;
            for (int l = 0; l < L; l++)
            {
                if (fixedAtCap[l]) { share[l] = cap; continue; }
                share[l] = sumFree > 0 ? remaining * Math.Max(targets[l], 0) / sumFree : remaining / free;
                if (share[l] > cap) { fixedAtCap[l] = true; clipped = true; }
            }
            if (!clipped) break;
        }
        long sum = 0;
        for (int l = 0; l < L; l++)
        {
            result[l] = (int)Math.Clamp(Math.Floor(share[l] + 1e-9), 0, cap);
            sum += result[l];
        }
        // Largest remainder: add one to the layers with the largest fractional parts until the sum is exact.
        while (sum != total)
        {
            int best = -1;
            double bestFrac = double.NegativeInfinity;
            for (int l = 0; l < L; l++)
            {
                double frac = share[l] - result[l];
                bool ok = sum < total ? result[l] < cap : result[l] > 0;
                double key = sum < total ? frac : -frac;
                if (ok && key > bestFrac) { bestFrac = key; best = l; }
            }
            if (best < 0) break;
            result[best] += sum < total ? 1 : -1;
            sum += sum < total ? 1 : -1;
        }
    }
}
