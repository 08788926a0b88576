using KvNotebooks.Cache;

namespace KvNotebooks.Tests.Cache;

public class KvCacheTests
{
    private static (float[] k, float[] v, int[] pos) Entries(int n, int hd, int start = 0)
    {
        var k = new float[n * hd]; var v = new float[n * hd]; var pos = new int[n];
        for (int i = 0; i < n; i++)
        {
            pos[i] = start + i;
            for (int d = 0; d < hd; d++) { k[i * hd + d] = start + i + d / 100f; v[i * hd + d] = -(start + i) - d / 100f; }
        }
        return (k, v, pos);
    }

    [Fact]
    public void KeepCompactsAcrossPagesAndFreesThem()
    {
        var cache = new KvCache(1, 1, 4, pageSize: 8);
        var head = cache[0, 0];
        var (k, v, pos) = Entries(30, 4);
        head.Append(k, v, 0, 4, pos);
        Assert.Equal(30, head.Count);
        Assert.Equal(4, cache.Pool.PagesInUse);

        int[] keep = [0, 3, 9, 17, 25, 29];
        head.Keep(keep);
        Assert.Equal(keep.Length, head.Count);
        Assert.Equal(1, cache.Pool.PagesInUse);
        Assert.Equal(4, cache.Pool.PeakPagesInUse);
        for (int j = 0; j < keep.Length; j++)
        {
            Assert.Equal(keep[j], head.Position(j));
            Assert.Equal(keep[j] + 0.03f, head.Key(j)[3]);
            Assert.Equal(-keep[j] - 0.02f, head.Value(j)[2]);
        }
    }

    [Fact]
    public void SinkAndWindowKeepsFirstAndLast()
    {
        var cache = new KvCache(1, 1, 2, pageSize: 4);
        var (k, v, pos) = Entries(20, 2, start: 100);
        cache[0, 0].Append(k, v, 0, 2, pos);
        cache[0, 0].KeepSinkAndWindow(3, 5);
        int[] expected = [100, 101, 102, 115, 116, 117, 118, 119];
        Assert.Equal(expected, Enumerable.Range(0, cache[0, 0].Count).Select(cache[0, 0].Position));
        Assert.Equal(8L * 2 * 2 * sizeof(float), cache.LiveBytes);
    }

    [Fact]
    public void FreedPagesAreReused()
    {
        var cache = new KvCache(2, 2, 4, pageSize: 4);
        var (k, v, pos) = Entries(16, 4);
        for (int round = 0; round < 3; round++)
        {
            foreach (var (l, h) in new[] { (0, 0), (0, 1), (1, 0), (1, 1) }) cache[l, h].Append(k, v, 0, 4, pos);
            cache.Clear();
        }
        Assert.Equal(16, cache.Pool.PagesReserved);
        Assert.Equal(0, cache.Pool.PagesInUse);
    }

    [Fact]
    public void KeepRejectsUnsortedOrOutOfRangeIndices()
    {
        var cache = new KvCache(1, 1, 2);
        var (k, v, pos) = Entries(5, 2);
        cache[0, 0].Append(k, v, 0, 2, pos);
        Assert.Throws<ArgumentException>(() => cache[0, 0].Keep([2, 1]));
        Assert.Throws<ArgumentException>(() => cache[0, 0].Keep([0, 5]));
    }
}
