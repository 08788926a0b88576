using KvNotebooks.HeadMasks;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.HeadMasks;

public class HeadScoresTests
{
    private static string Temp(string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"kvnb-scores-{Guid.NewGuid():N}.tsv");
        File.WriteAllText(path, text);
        return path;
    }

    private static readonly LlamaConfig TwoByThree = new() { VocabSize = 10, HiddenSize = 8, IntermediateSize = 8, NumLayers = 2, NumHeads = 3, NumKvHeads = 3, HeadDim = 4 };

    [Fact]
    public void ContinuousAndZeroOneFilesLoadAndRoundTrip()
    {
        var cont = HeadScores.Load(Temp("0.25\t0.9\t-1.5e-3\n1\t0\t0.5\n"), TwoByThree);
        Assert.Equal((2, 3), (cont.NumLayers, cont.NumKvHeads));
        Assert.Equal(-1.5e-3, cont[0, 2]);
        Assert.Equal(0.5, cont[1, 2]);
        // a 0/1 mask is a special case (spaces and a trailing blank line allowed, as the headmask loader)
        var mask = HeadScores.Load(Temp("1 0 1\n0 0 1\n\n"));
        Assert.Equal(1.0, mask[0, 0]); Assert.Equal(0.0, mask[1, 1]);
        // binarizing a 0/1 mask at its own sparsity gives it back
        var full = mask.Binarize(0.5, TieBreak.Duo);
        Assert.Equal(new[,] { { true, false, true }, { false, false, true } }, full);
        // save → load is exact
        string path = Path.Combine(Path.GetTempPath(), $"kvnb-scores-{Guid.NewGuid():N}.tsv");
        var odd = new HeadScores(new double[,] { { 0.1, 1.0 / 3, 1e-300 }, { -7, 0.999999999999, 2 } });
        odd.Save(path);
        var back = HeadScores.Load(path);
        for (int l = 0; l < 2; l++) for (int h = 0; h < 3; h++) Assert.Equal(odd[l, h], back[l, h]);
        HeadScores.SaveMask(path, full);
        Assert.Equal("1\t0\t1\n0\t0\t1\n", File.ReadAllText(path));
        // the existing inference loader reads the 0/1 export
        Assert.Equal(full, KvNotebooks.Eviction.HeadMask.LoadTsv(path));
    }

    [Theory]
    [InlineData("", "the file is empty")]
    [InlineData("\n\n", "the file is empty")]
    [InlineData("1\t0\t1\n1\t0\n", "line 2: 2 columns, line 1 has 3")]
    [InlineData("1\t0\t1\n\n1\tNaN\t0\n", "line 3.column 2: NaN: head scores must be finite")]
    [InlineData("1\t0\tInfinity\n1\t0\t1\n", "line 1.column 3: Infinity")]
    [InlineData("1\t0\t1\n1\tabc\t1\n", "line 2.column 2: 'abc' is not a number")]
    [InlineData("1\t0\t1\n1\t0\t1\n1\t1\t1\n", "line 3: more lines than the model's 2 layers")]
    [InlineData("1\t0\n1\t0\n", "line 1: 2 columns, the model has 3 KV heads")]
    public void BadFilesNameTheFileLineColumnAndProblem(string text, string expected)
    {
        string path = Temp(text);
        var e = Assert.Throws<KvNotebooks.Validation.InputException>(() => HeadScores.Load(path, TwoByThree));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Throws<FileNotFoundException>(() => HeadScores.Load(path + ".missing"));
    }

    [Theory]
    [InlineData(TieBreak.Duo)]
    [InlineData(TieBreak.PruLong)]
    public void BinarizingGivesExactlyRoundSTimesHeadsStreamingHeadsWithTheLowestScores(TieBreak rule)
    {
        var rng = new Random(5);
        foreach (var (L, H) in new[] { (4, 6), (3, 5), (1, 1), (32, 8) })
        {
            var v = new double[L, H];
            // few distinct values: many ties
            for (int l = 0; l < L; l++) for (int h = 0; h < H; h++) v[l, h] = rng.Next(4) * 0.25;
            var scores = new HeadScores(v);
            for (int k = 0; k <= 20; k++)
            {
                double sp = k / 20.0;
                var full = scores.Binarize(sp, rule, seed: 3);
                int streaming = full.Cast<bool>().Count(f => !f);
                Assert.Equal((int)Math.Round(k * L * H / 20m, MidpointRounding.ToEven), streaming);   // exact rational s·n
                // every streaming head scores ≤ every full head
                double maxStreaming = double.NegativeInfinity, minFull = double.PositiveInfinity;
                for (int l = 0; l < L; l++)
                    for (int h = 0; h < H; h++)
                        if (full[l, h]) minFull = Math.Min(minFull, v[l, h]); else maxStreaming = Math.Max(maxStreaming, v[l, h]);
                Assert.True(maxStreaming <= minFull, $"s = {sp}: a streaming head scores {maxStreaming} above a full head's {minFull}");
            }
        }
        Assert.Equal(17, HeadScores.StreamingCount(0.7, 24));   // 16.8 → 17
        Assert.Equal(7, HeadScores.StreamingCount(0.3, 24));    // 7.2 → 7
        Assert.Equal(12, HeadScores.StreamingCount(0.5, 24));
        Assert.Throws<ArgumentOutOfRangeException>(() => HeadScores.StreamingCount(1.2, 24));
    }

    [Fact]
    public void DuoTieBreakingIsSeededAndOnlyMovesTiedHeads()
    {
        // 24 heads: 8 clearly low, 8 tied at 0.5, 8 clearly high; 12 streaming = the 8 low + 4 of the tied
        var v = new double[4, 6];
        for (int i = 0; i < 24; i++) v[i / 6, i % 6] = (i % 3) switch { 0 => 0.1 + i * 1e-3, 1 => 0.5, _ => 0.9 + i * 1e-3 };
        var scores = new HeadScores(v);
        var a = scores.Binarize(0.5, TieBreak.Duo, seed: 7);
        Assert.Equal(a, scores.Binarize(0.5, TieBreak.Duo, seed: 7));        // same seed, same mask
        var masks = Enumerable.Range(0, 20).Select(seed => scores.Binarize(0.5, TieBreak.Duo, seed)).ToArray();
        for (int i = 0; i < 24; i++)
        {
            var values = masks.Select(m => m[i / 6, i % 6]).Distinct().ToArray();
            if (i % 3 == 0) Assert.Equal([false], values);   // low heads always streaming
            if (i % 3 == 2) Assert.Equal([true], values);    // high heads always full
        }
        // the tied heads do move between seeds, and each mask takes exactly 4 of them
        Assert.True(masks.Select(m => string.Concat(Enumerable.Range(0, 24).Where(i => i % 3 == 1).Select(i => m[i / 6, i % 6] ? '1' : '0'))).Distinct().Count() > 1);
        Assert.All(masks, m => Assert.Equal(4, Enumerable.Range(0, 24).Count(i => i % 3 == 1 && !m[i / 6, i % 6])));
        // PruLong's rule is seeded as well
        Assert.Equal(scores.Binarize(0.5, TieBreak.PruLong, 42), scores.Binarize(0.5, TieBreak.PruLong, 42));
    }
}
