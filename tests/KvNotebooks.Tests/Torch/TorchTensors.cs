using KvNotebooks.Torch;
using static TorchSharp.torch;

namespace KvNotebooks.Tests.Torch;

/// <summary>Moving arrays in and out of LibTorch, and the comparisons the torch reference tests make.</summary>
internal static class TorchTensors
{
    // Each helper keeps its temporaries in a dispose scope and its argument alive to the end: TorchSharp frees
    // unreferenced tensors from the finalizer, which could run while LibTorch still reads them (TorchLlama's remarks).

    /// <summary>fp64 copy of <paramref name="data"/>; first makes sure LibTorch loads (else fails saying how to fix it).</summary>
    public static Tensor F64(float[] data, params long[] shape)
    {
        TorchRuntime.Require();
        using var scope = NewDisposeScope();
        return tensor(data, shape).to(ScalarType.Float64).MoveToOuterDisposeScope();
    }
    public static float[] Floats(Tensor t)
    {
        using var scope = NewDisposeScope();
        var values = t.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        GC.KeepAlive(t);
        return values;
    }
    public static double[] Doubles(Tensor t)
    {
        using var scope = NewDisposeScope();
        var values = t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();
        GC.KeepAlive(t);
        return values;
    }

    /// <summary>Worst row's max |actual − expected| / max |expected| over rows of <paramref name="width"/>.</summary>
    public static double WorstRowRelative(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, int width)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int r = 0; r < expected.Length / width; r++)
        {
            double diff = 0, scale = 0;
            for (int i = r * width; i < (r + 1) * width; i++)
            {
                Assert.True(float.IsFinite(actual[i]), $"row {r}: value {i - r * width} is {actual[i]}");
                diff = Math.Max(diff, Math.Abs(actual[i] - expected[i]));
                scale = Math.Max(scale, Math.Abs(expected[i]));
            }
            worst = Math.Max(worst, diff / Math.Max(scale, 1e-30));
        }
        return worst;
    }

    /// <summary>Asserts max |a − e| ≤ tol · max |e| (the tensor's largest magnitude), naming the tensor and the worst index.</summary>
    public static void Close(string what, ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, worst = 0; int at = -1;
        foreach (var e in expected) scale = Math.Max(scale, Math.Abs(e));
        Assert.True(scale > 0, $"{what}: torch's values are all zero, the comparison would be vacuous");
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            if (!(d <= worst)) { worst = d; at = i; }
        }
        Assert.True(worst <= tol * scale, $"{what}: max |ours − torch| = {worst:E3} at [{at}] (ours {actual[Math.Max(at, 0)]:G7}, torch {expected[Math.Max(at, 0)]:G7}) exceeds {tol:E1} × {scale:G4}");
    }
}
