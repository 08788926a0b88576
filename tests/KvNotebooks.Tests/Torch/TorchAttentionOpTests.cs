using KvNotebooks.Training.Ops;
using static KvNotebooks.Tests.Torch.TorchTensors;
using static KvNotebooks.Tests.Training.GradCheck;
using static TorchSharp.torch;

namespace KvNotebooks.Tests.Torch;

/// <summary>
/// The training attention (<see cref="BlockedAttentionOp"/>: the AVX-512 flash tiles at head size 32, GEMM blocks
/// otherwise; and the row-by-row <see cref="AttentionOp"/>) against LibTorch autograd in fp64: output, log-sum-exp and
/// dq, dk, dv, with full and streaming heads (sink / window edges inside and across tiles), GQA, 1 and 2 threads.
/// </summary>
public class TorchAttentionOpTests
{
    private static readonly KeyVisibility[] Mixed =
    [
        KeyVisibility.Full, KeyVisibility.Streaming(2, 5), KeyVisibility.Streaming(0, 3), KeyVisibility.Streaming(3, 1),
        KeyVisibility.Streaming(40, 2), KeyVisibility.Full, KeyVisibility.Streaming(0, 70), KeyVisibility.Streaming(64, 64),
    ];

    [Theory]
    [InlineData(5, 32, 2, 1)]
    [InlineData(33, 32, 2, 2)]
    [InlineData(130, 32, 1, 2)]
    [InlineData(257, 32, 2, 1)]
    [InlineData(37, 8, 2, 1)]
    [InlineData(70, 16, 4, 2)]
    public void ForwardAndBackwardMatchAutograd(int T, int hd, int Hkv, int threads)
    {
        const int Hq = 8;
        var rng = new Random(T * 7 + hd);
        var q = Random(rng, T * Hq * hd, 1.5f); var k = Random(rng, T * Hkv * hd, 1.5f); var v = Random(rng, T * Hkv * hd);
        var dO = Random(rng, T * Hq * hd);

        KvNotebooks.Torch.TorchRuntime.Require();
        using var scope = NewDisposeScope();
        var tq = F64(q, T, Hq, hd).transpose(0, 1).requires_grad_(true);     // [Hq × T × hd], a leaf of autograd
        var tk = F64(k, T, Hkv, hd).transpose(0, 1).requires_grad_(true);
        var tv = F64(v, T, Hkv, hd).transpose(0, 1).requires_grad_(true);
        using var sqrtHd = TorchSharp.ScalarExtensionMethods.ToScalar(Math.Sqrt(hd));            // scalars held to the end: TorchSharp's implicit ones are
        using var minusInfinity = TorchSharp.ScalarExtensionMethods.ToScalar(double.NegativeInfinity);   // unreferenced temporaries (TorchLlama's remarks)
        var scores = tq.matmul(tk.repeat_interleave(Hq / Hkv, 0).transpose(1, 2)).div(sqrtHd);
        scores = scores.masked_fill(TorchGradientTests.Visibility(Mixed, T).logical_not(), minusInfinity);
        var lse = scores.logsumexp(-1);                                        // [Hq × T]
        var o = nn.functional.softmax(scores, -1).matmul(tv.repeat_interleave(Hq / Hkv, 0)).transpose(0, 1);   // [T × Hq × hd]
        o.backward([F64(dO, T, Hq, hd)]);
        double[] E(Tensor t) => Doubles(t.transpose(0, 1));                    // back to [T × heads × hd]

        foreach (bool blocked in new[] { true, false })
        {
            var (oo, ll) = (new float[q.Length], new float[Hq * T]);
            var (dq, dk, dv) = (new float[q.Length], new float[k.Length], new float[v.Length]);
            Kernels.PagedFlashAttentionTests.Run(threads, false, () =>
            {
                if (blocked)
                {
                    BlockedAttentionOp.Forward(q, k, v, oo, ll, T, Hq, Hkv, hd, Mixed);
                    BlockedAttentionOp.Backward(dO, q, k, v, oo, ll, dq, dk, dv, T, Hq, Hkv, hd, Mixed);
                }
                else
                {
                    AttentionOp.Forward(q, k, v, oo, ll, T, Hq, Hkv, hd, Mixed);
                    AttentionOp.Backward(dO, q, k, v, oo, ll, dq, dk, dv, T, Hq, Hkv, hd, Mixed);
                }
            });
            string what = blocked ? "blocked" : "row-by-row";
            Close(what + " o", oo, Doubles(o), 1e-5);
            Close(what + " lse", ll, Doubles(lse), 1e-6);
            Close(what + " dq", dq, E(tq.grad!), 1e-4);
            Close(what + " dk", dk, E(tk.grad!), 1e-4);
            Close(what + " dv", dv, E(tv.grad!), 1e-4);
        }
    }
}
