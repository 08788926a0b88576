using System.Runtime.Intrinsics;
using KvNotebooks.Kernels;
using KvNotebooks.Model;

namespace KvNotebooks.Training.Ops;

/// <summary>cos/sin of pos·inv_freq for a fixed list of positions, [rows × headDim/2] each,
/// built once per (config, sequence length): the frequencies of <see cref="Rope.InverseFrequencies"/> (fp32, as
/// transformers computes them) and fp32 angles, so training rotates exactly as inference does.</summary>
public sealed class RopeTable
{
    public RopeTable(int headDim, double theta, RopeScaling? scaling, ReadOnlySpan<int> positions)
    {
        HeadDim = headDim;
        Rows = positions.Length;
        int half = headDim / 2;
        var inv = Rope.InverseFrequencies(headDim, theta, scaling);
        Cos = new float[Rows * half];
        Sin = new float[Rows * half];
        for (int r = 0; r < Rows; r++)
            for (int i = 0; i < half; i++)
            {
                float angle = positions[r] * inv[i];
                Cos[r * half + i] = MathF.Cos(angle);
                Sin[r * half + i] = MathF.Sin(angle);
            }
    }

    /// <summary>Positions 0 … rows−1.</summary>
    public static RopeTable Sequential(LlamaConfig c, int rows)
    {
        var pos = new int[rows];
        for (int i = 0; i < rows; i++) pos[i] = i;
        return new RopeTable(c.HeadDim, c.RopeTheta, c.RopeScaling, pos);
    }

    public int HeadDim { get; }
    public int Rows { get; }
    public float[] Cos { get; }
    public float[] Sin { get; }
}

/// <summary>Rotary embedding, rotate-half convention (dim i pairs with i + headDim/2):
/// (a, b) → (a·cos − b·sin, b·cos + a·sin). It is a rotation, so backward is the rotation by −angle.</summary>
/// <remarks>With AVX-512 and headDim/2 a multiple of 16 the pairs are rotated 16 at a time; large inputs
/// are split by rows over <see cref="ComputeContext.Threads"/>.</remarks>
public static unsafe class RopeOp
{
    /// <summary>Rotates <paramref name="heads"/> heads of each of <paramref name="rows"/> rows of
    /// x [rows × stride] in place; row r uses table row r.</summary>
    public static void Forward(Span<float> x, int rows, int stride, int heads, RopeTable table) => Rotate(x, rows, stride, heads, table, +1f);

    /// <summary>dx [rows × stride] in place: gradient w.r.t. the un-rotated input (rotation by −angle).</summary>
    public static void Backward(Span<float> dx, int rows, int stride, int heads, RopeTable table) => Rotate(dx, rows, stride, heads, table, -1f);

    private static void Rotate(Span<float> x, int rows, int stride, int heads, RopeTable table, float sign)
    {
        int hd = table.HeadDim, half = hd / 2;
        if (rows > table.Rows) throw new ArgumentException($"RoPE table has {table.Rows} rows, {rows} requested");
        if (x.Length < (long)rows * stride || heads * hd > stride) throw new ArgumentException("RoPE input too small");
        bool fast = Vector512.IsHardwareAccelerated && !ComputeContext.Current.Portable && half % 16 == 0;
        const int RowsPerChunk = 256;
        fixed (float* px = x, pc = table.Cos, ps = table.Sin)
        {
            float* cx = px, ccos = pc, csin = ps;
            ComputeContext.Current.For((rows + RowsPerChunk - 1) / RowsPerChunk, (long)rows * heads * hd >= 1 << 16, ch =>
            {
                for (int r = ch * RowsPerChunk; r < Math.Min(rows, (ch + 1) * RowsPerChunk); r++)
                {
                    float* cos = ccos + (long)r * half, sin = csin + (long)r * half;
                    for (int h = 0; h < heads; h++)
                    {
                        float* v = cx + (long)r * stride + h * hd;
                        if (fast)
                        {
                            var sg = Vector512.Create(sign);
                            for (int i = 0; i < half; i += 16)
                            {
                                var a = Vector512.Load(v + i); var b = Vector512.Load(v + i + half);
                                var c = Vector512.Load(cos + i); var s = Vector512.Load(sin + i) * sg;
                                (a * c - b * s).Store(v + i);
                                (b * c + a * s).Store(v + i + half);
                            }
                            continue;
                        }
                        for (int i = 0; i < half; i++)
                        {
                            float a = v[i], b = v[i + half], c = cos[i], s = sign * sin[i];
                            v[i] = a * c - b * s;
                            v[i + half] = b * c + a * s;
                        }
                    }
                }
            });
        }
    }
}
