using KvNotebooks.Model;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Training;

/// <summary>
/// The fast path of <see cref="TrainableLlama"/> for a loss at a few rows (answer tokens): the last layer runs after
/// its attention on the loss rows only, packed, and its backward follows the same rows (see
/// <see cref="LastLayerOnLossRows"/>). Loss and gradients are bit for bit those of the full pass.
/// </summary>
public sealed partial class TrainableLlama
{
    private bool _sparse;           // the last forward ran the last layer on the loss rows only
    private bool[] _activeRows = [];

    /// <summary>Whether <see cref="Forward"/> runs the last layer on the loss rows only (default on). The other rows of
    /// the last layer feed nothing the loss reads except through their keys and values, so for them only K and V (and Q,
    /// for the attention tiles) are computed; attention runs only on the 64-row blocks that hold a loss row; and every
    /// weight gradient is summed in the same blocks as the full computation. Loss and gradients are therefore bit for
    /// bit those of the full pass (the tests check it) at about a quarter less work for a 4-layer model. Used when the
    /// AVX-512 attention path runs, gates are off, the loss positions increase and are at most half the rows.</summary>
    public bool LastLayerOnLossRows { get; set; } = true;
    /// <summary>Whether the last <see cref="Forward"/> took that path.</summary>
    public bool LastForwardOnLossRows => _sparse;

    /// <summary>Whether <see cref="Forward"/> may run the last layer on the loss rows only (see <see cref="LastLayerOnLossRows"/>).</summary>
    private bool UseSparse(ReadOnlySpan<int> lossPositions, int N, int batch)
    {
        int P = lossPositions.Length;
        if (!LastLayerOnLossRows || Gates is not null || !UseBlockedAttention || !FlashAttention.Supports(Config.HeadDim)) return false;
        if (batch < 1 || N % batch != 0 || 2 * PackedRows(P) > N) return false;
        for (int p = 1; p < P; p++) if (lossPositions[p] <= lossPositions[p - 1]) return false;
        return true;
    }

    /// <summary>Rows the loss rows are packed into: an even count of at least 8, so that every packed row takes the
    /// GEMM micro-kernel (6 or 2 rows, never the 1-row one) that the full pass gives it.</summary>
    internal static int PackedRows(int lossRows) => Math.Max(8, lossRows + (lossRows & 1));

    /// <summary>Flags the row blocks (<see cref="FlashAttention.RowBlockSize"/> rows, per sequence) that hold a loss row.</summary>
    private void MarkActiveRows(ReadOnlySpan<int> lossPositions)
    {
        int T = _seqLen, per = FlashAttention.RowBlocks(T), n = _batch * per;
        if (_activeRows.Length < n) _activeRows = new bool[n];
        Array.Clear(_activeRows, 0, n);
        foreach (int p in lossPositions) _activeRows[p / T * per + p % T / FlashAttention.RowBlockSize] = true;
    }

    /// <summary>The last layer after attention, and the final norm, on the loss rows packed into _P2 rows (pad rows
    /// zero: an even count of at least 8 keeps every row on the GEMM micro-kernels the full pass uses, so each row's
    /// sums are the same). Saves: RowsQa = attention rows, Mid/Xn2/Rstd2/Gate/Up/H, Final/RstdF and XfRows packed.</summary>
    private void LastLayerRowsForward(LayerWeights w, LayerActs x)
    {
        var c = Config; var a = _a!;
        int P2 = _P2, d = c.HiddenSize;
        var rows = _positions.AsSpan(0, _P);
        GatherRows(x.Att, a.RowsQa, rows, c.QDim, P2);
        GatherRows(x.Resid, x.Mid, rows, d, P2);
        AfterAttention(w, x, a.RowsQa, a.Final, P2);
        RmsNormOp.Forward(a.Final, Weights.FinalNorm, a.XfRows, a.RstdF, P2, d, (float)c.RmsNormEps);
        Timer?.Mark("fwd rmsnorm");
    }

    /// <summary>dst[i] = src row rows[i] (width w) for i &lt; rows.Length, zero for the pad rows up to count.</summary>
    private static void GatherRows(float[] src, float[] dst, ReadOnlySpan<int> rows, int w, int count)
    {
        for (int i = 0; i < rows.Length; i++) src.AsSpan(rows[i] * w, w).CopyTo(dst.AsSpan(i * w, w));
        dst.AsSpan(rows.Length * w, (count - rows.Length) * w).Clear();
    }

    /// <summary>dst (count rows of width w) = 0 except row rows[i] = src row i.</summary>
    private static void ScatterRows(float[] src, Span<float> dst, ReadOnlySpan<int> rows, int w)
    {
        dst.Clear();
        for (int i = 0; i < rows.Length; i++) src.AsSpan(i * w, w).CopyTo(dst.Slice(rows[i] * w, w));
    }

    /// <summary>Backward of the sparse forward: the final norm and the last layer's MLP, o_proj and q_proj on the packed
    /// loss rows (weight gradients through the row-grouped sums that match the full pass), attention on the active row
    /// blocks, then k/v_proj, the input norm and the layers below on every row as usual.</summary>
    private void BackwardSparse()
    {
        var c = Config; var a = _a!;
        int N = _N, P = _P, P2 = _P2, l = c.NumLayers - 1;
        int d = c.HiddenSize, qd = c.QDim, kvd = c.KvDim, ff = c.IntermediateSize, Hq = c.NumHeads, Hkv = c.NumKvHeads;
        int stop = LowestLayerNeedingGrad();
        var rows = _positions.AsSpan(0, P);
        var dResidC = a.RowsDa.AsSpan(0, P2 * d);
        dResidC.Clear();
        RmsNormOp.BackwardRows(a.DXfRows, a.Final, Weights.FinalNorm, a.RstdF, stop > c.NumLayers ? default : dResidC, G(Weights.FinalNorm), rows, N, d);
        Timer?.Mark("bwd rmsnorm");
        if (stop > c.NumLayers) return;
        var w = Weights.Layers[l];
        var x = a.L[l];
        // MLP block, packed rows
        var dH = a.DH.AsSpan(0, P2 * ff);
        Kernels.Gemm.MatMulNN(dResidC, w.WDown, dH, P2, ff, d);
        LinearOp.WeightGradRows(dResidC, x.H, G(w.WDown), default, rows, ff, d);
        Timer?.Mark("bwd linear");
        var dGate = a.DGate.AsSpan(0, P2 * ff);
        var dUp = a.DUp.AsSpan(0, P2 * ff);
        SwiGluOp.Backward(dH, x.Gate, x.Up, dGate, dUp, accumulate: false);
        Timer?.Mark("bwd swiglu");
        var dXn2 = a.DXn.AsSpan(0, P2 * d);
        Kernels.Gemm.MatMulNN(dGate, w.WGate, dXn2, P2, d, ff);
        LinearOp.WeightGradRows(dGate, x.Xn2, G(w.WGate), default, rows, d, ff);
        Kernels.Gemm.MatMulNN(dUp, w.WUp, dXn2, P2, d, ff, accumulate: true);
        LinearOp.WeightGradRows(dUp, x.Xn2, G(w.WUp), default, rows, d, ff);
        Timer?.Mark("bwd linear");
        RmsNormOp.BackwardRows(dXn2, x.Mid, w.PostNorm, x.Rstd2, dResidC, G(w.PostNorm), rows, N, d);   // dResidC = dL/d(mid)
        Timer?.Mark("bwd rmsnorm");
        // o_proj on the packed rows; dO of attention and dL/d(layer input) spread back to every row (zero elsewhere)
        var dAttC = a.RowsQb.AsSpan(0, P2 * qd);
        Kernels.Gemm.MatMulNN(dResidC, w.Wo, dAttC, P2, qd, d);
        LinearOp.WeightGradRows(dResidC, a.RowsQa, G(w.Wo), default, rows, qd, d);
        var dAtt = a.DAtt.AsSpan(0, N * qd);
        ScatterRows(a.RowsQb, dAtt, rows, qd);
        var dResid = a.DResid.AsSpan(0, N * d);
        ScatterRows(a.RowsDa, dResid, rows, d);
        Timer?.Mark("bwd linear");
        var dQ = a.DQ.AsSpan(0, N * qd);
        var dK = a.DK.AsSpan(0, N * kvd);
        var dV = a.DV.AsSpan(0, N * kvd);
        FlashAttention.Backward(dAtt, x.Q.AsSpan(0, N * qd), x.K.AsSpan(0, N * kvd), x.V.AsSpan(0, N * kvd), x.Att.AsSpan(0, N * qd), x.Lse.AsSpan(0, N * Hq),
            dQ, dK, dV, _batch, _seqLen, Hq, Hkv, Visibility[l], accumulate: false, _activeRows);
        Timer?.Mark("bwd attention");
        RopeOp.Backward(dQ, N, qd, Hq, _rope!);
        RopeOp.Backward(dK, N, kvd, Hkv, _rope!);
        Timer?.Mark("bwd rope");
        // q_proj on the packed rows (dQ is zero elsewhere), k/v_proj on every row
        GatherRows(a.DQ, a.RowsQb, rows, qd, P2);
        GatherRows(x.Xn1, a.RowsDb, rows, d, P2);
        Kernels.Gemm.MatMulNN(a.RowsQb, w.Wq, a.RowsDa, P2, d, qd);
        LinearOp.WeightGradRows(a.RowsQb, a.RowsDb, G(w.Wq), G(w.Bq), rows, d, qd);
        var dXn = a.DXn.AsSpan(0, N * d);
        ScatterRows(a.RowsDa, dXn, rows, d);
        LinearOp.Backward(dK, x.Xn1, w.Wk, dXn, G(w.Wk), G(w.Bk), N, d, kvd);
        LinearOp.Backward(dV, x.Xn1, w.Wv, dXn, G(w.Wv), G(w.Bv), N, d, kvd);
        Timer?.Mark("bwd linear");
        RmsNormOp.Backward(dXn, x.Resid, w.InputNorm, x.Rstd1, dResid, G(w.InputNorm), N, d); // dResid = dL/d(layer input)
        Timer?.Mark("bwd rmsnorm");
        BackwardLayers(l - 1, stop);
    }
}
