using KvNotebooks.Training.Ops;

namespace KvNotebooks.Tests.Training;

/// <summary>The training attention's visibility rule against its definition written out block by block.</summary>
public class KeyVisibilityTests
{
    /// <summary>The block-sparse streaming kernel's rule, written independently of <see cref="KeyVisibility"/>'s
    /// arithmetic: positions fall in blocks of B tokens; a query in block qb sees the keys (up to itself) of the first
    /// ⌈S/B⌉ blocks and of blocks qb − ⌈W/B⌉ + 1 … qb. A full head sees every key up to itself.</summary>
    public static bool BruteSees(KeyVisibility m, int i, int j)
    {
        if (j > i) return false;
        if (m.Window == int.MaxValue) return true;
        int B = Math.Max(1, m.Block);
        int sinkBlocks = 0; while (sinkBlocks * B < m.Sink) sinkBlocks++;
        int localBlocks = 0; while ((long)localBlocks * B < m.Window) localBlocks++;
        int qb = i / B, kb = j / B;
        bool sink = kb < sinkBlocks;
        bool local = false;
        for (int b = qb - localBlocks + 1; b <= qb; b++) if (b == kb) local = true;
        return sink || local;
    }

    public static TheoryData<int, int, int> Rules() => new()
    {
        { 0, 1, 1 }, { 2, 3, 1 }, { 5, 7, 1 }, { 1, 3, 2 }, { 3, 9, 4 }, { 4, 8, 4 }, { 0, 5, 3 }, { 7, 2, 5 },
        { 2, 16, 2 }, { 128, 1024, 128 }, { 100, 1000, 128 }, { 0, 64, 64 }, { 40, 2, 8 },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void SeesRangesAndEdgesFollowTheBlockDefinition(int sink, int window, int block)
    {
        var m = KeyVisibility.Streaming(sink, window, block);
        int n = Math.Min(3000, 4 * (sink + window + block) + 20);
        for (int i = 0; i < n; i += i < 300 ? 1 : 7)
        {
            var seen = new List<int>();
            for (int j = 0; j < n; j++)
            {
                bool want = BruteSees(m, i, j);
                Assert.True(want == m.Sees(i, j), $"{m}: row {i}, key {j}: Sees {m.Sees(i, j)}, definition {want}");
                if (want) seen.Add(j);
                // the kernels' edges: a non-sink key j is seen by rows j … WindowEnd(j) − 1
                if (j <= i && j >= m.SinkEnd) Assert.Equal(want, i < m.WindowEnd(j));
            }
            var (se, ws) = m.Ranges(i);
            Assert.Equal(seen, Enumerable.Range(0, se).Concat(Enumerable.Range(ws, i - ws + 1)));
        }
    }

    [Fact]
    public void TokenGranularityIsBlockOneAndThePapersBlocksCount()
    {
        // block 1: the first Sink keys and keys i − Window + 1 … i
        var t = KeyVisibility.Streaming(2, 3);
        Assert.Equal(t, KeyVisibility.Streaming(2, 3, 1));
        Assert.Equal([0, 1, 5, 6, 7], Enumerable.Range(0, 10).Where(j => t.Sees(7, j)));
        // the paper's training kernel: sink 128, window 1024, blocks of 128 → 1 sink block and 8 local blocks
        var p = KeyVisibility.Streaming(128, 1024, 128);
        Assert.Equal((1, 8, 128), (p.SinkBlocks, p.LocalBlocks, p.SinkEnd));
        // a query in block 20 (rows 2560…2687) sees block 0 and blocks 13…20, up to itself
        Assert.True(p.Sees(2600, 13 * 128) && !p.Sees(2600, 13 * 128 - 1) && p.Sees(2600, 127) && !p.Sees(2600, 128));
        Assert.Equal(13 * 128, p.WindowStart(2600));
        // rounding up: sink 3 in blocks of 4 keeps the whole first block; window 9 → 3 local blocks
        var r = KeyVisibility.Streaming(3, 9, 4);
        Assert.Equal([0, 1, 2, 3, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], Enumerable.Range(0, 30).Where(j => r.Sees(21, j)));
        Assert.True(KeyVisibility.Full.Sees(7, 0) && KeyVisibility.Full.Sees(7, 7) && !KeyVisibility.Full.Sees(7, 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => KeyVisibility.Streaming(2, 3, 0));
    }
}
