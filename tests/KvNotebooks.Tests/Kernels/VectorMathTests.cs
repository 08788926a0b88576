using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;

namespace KvNotebooks.Tests.Kernels;

public class VectorMathTests
{
    [Fact]
    public void Exp2IsAccurateAndUnderflowsToZero()
    {
        if (!Vector512.IsHardwareAccelerated) return;   // only the AVX-512 kernels use it
        var rng = new Random(1);
        double worst = 0;
        for (int i = 0; i < 200_000; i++)
        {
            float x = i < 1000 ? (float)(rng.NextDouble() - 0.5) : (float)(rng.NextDouble() * 130 - 120);
            double expected = Math.Pow(2, x), got = VectorMath.Exp2(Vector512.Create(x)).GetElement(0);
            worst = Math.Max(worst, Math.Abs(got - expected) / expected);
        }
        Assert.True(worst < 1.5e-7, $"worst relative error {worst:E2}");
        Assert.Equal(1f, VectorMath.Exp2(Vector512<float>.Zero).GetElement(0));
        Assert.Equal(0f, VectorMath.Exp2(Vector512.Create(float.NegativeInfinity)).GetElement(0));
        Assert.Equal(0f, VectorMath.Exp2(Vector512.Create(-200f)).GetElement(0));
    }
}
