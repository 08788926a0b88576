using KvNotebooks.Cache;
using KvNotebooks.Eviction;
using KvNotebooks.Footprint;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tests.Inference;

namespace KvNotebooks.Tests.Cache;

/// <summary>KV quantization: error bounds, the bytes really held, the bit-weighted footprint, and attention
/// through dequantized values.</summary>
public class QuantizationTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void QuantizeDequantizeErrorIsAtMostHalfAStep(int bits)
    {
        var rng = new Random(bits);
        int levels = (1 << bits) - 1;
        for (int trial = 0; trial < 200; trial++)
        {
            int n = rng.Next(1, 70);
            double center = (rng.NextDouble() - 0.5) * 20, spread = trial % 10 == 0 ? 0 : Math.Pow(10, rng.NextDouble() * 4 - 3);
            var x = Enumerable.Range(0, n).Select(_ => (float)(center + (rng.NextDouble() - 0.5) * spread)).ToArray();
            var codes = new byte[n];
            var (scale, zero) = KvQuantizer.Quantize(x, n, 1, bits, codes, 1);
            float min = x.Min(), max = x.Max();
            Assert.True((float)zero <= min, "zero-point above the minimum");
            Assert.True((float)zero + levels * (float)scale >= max - 1e-6f * (Math.Abs(max) + 1), "range does not reach the maximum");
            // fp16 scale rounded up by at most one fp16 ulp over the exact (max − zero) / levels.
            Assert.True((float)scale <= (max - (float)zero) / levels * (1 + 1.0 / 512) + 1e-7);
            for (int i = 0; i < n; i++)
            {
                Assert.InRange(codes[i], 0, levels);
                float xhat = KvQuantizer.Dequantize(codes[i], scale, zero);
                Assert.True(Math.Abs(x[i] - xhat) <= 0.5 * (float)scale + 1e-5 * (Math.Abs(x[i]) + 1),
                    $"{bits} bits: x={x[i]} x̂={xhat} scale={(float)scale}");
            }
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void CodesPackToTheirBitWidth(int bits)
    {
        var rng = new Random(1);
        var codes = Enumerable.Range(0, 101).Select(_ => (byte)rng.Next(1 << bits)).ToArray();
        var packed = new byte[(codes.Length * bits + 7) / 8];
        KvQuantizer.Pack(codes, bits, packed);
        for (int i = 0; i < codes.Length; i++) Assert.Equal(codes[i], KvQuantizer.Unpack(packed, bits, i));
        // A 4-bit block's codes are a quarter of the same values in fp16 (2 bytes each).
        var q = new KvQuantization(bits, 32, 0);
        long fp16 = 32L * 64 * 2 * 2;
        long codeBytes = q.BlockBytes(64) - 2 * (2L * 64 + 2L * 32 * (64 / 32)) - 4 * 32;
        Assert.Equal(fp16 * bits / 16, codeBytes);
    }

    [Fact]
    public void StoreKeepsResidualInFullPrecisionAndCodesTheRest()
    {
        int hd = 8, G = 4, R = 6, n = 23;
        var q = new KvQuantization(4, G, R);
        var cache = new KvCache(1, 2, hd, pageSize: 4, quantization: q);
        var rng = new Random(2);
        var k = Enumerable.Range(0, n * hd).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var v = Enumerable.Range(0, n * hd).Select(_ => (float)(rng.NextDouble() * 2)).ToArray();
        var pos = Enumerable.Range(100, n).ToArray();
        for (int h = 0; h < 2; h++) cache[0, h].Append(k, v, 0, hd, pos);
        cache.Quantized!.Flush(0, cache.Layer(0));
        int quantized = (n - R) / G * G;                       // 16: whole groups older than the residual
        Assert.Equal(quantized, cache.QuantizedEntries(0, 0));
        Assert.Equal(n - quantized, cache[0, 0].Count);
        Assert.Equal(n, cache.HeadEntries(0, 1));
        Assert.Equal(2L * n, cache.Pool.EntriesInUse);
        Assert.Equal(2L * n, cache.Pool.PeakEntriesInUse);                   // an entry moved to codes is counted once
        Assert.Equal(Enumerable.Range(100 + quantized, n - quantized), Enumerable.Range(0, cache[0, 0].Count).Select(cache[0, 0].Position));
        // Bytes held: residual pages + blocks, each block exactly codes + fp16 scales/zero-points + positions.
        Assert.Equal(2L * (quantized / G) * q.BlockBytes(hd), cache.Quantized.Bytes);
        Assert.Equal(2L * ((n - quantized + 3) / 4) * cache.Pool.BytesPerPage + cache.Quantized.Bytes, cache.AllocatedBytes);
        // Dequantized values are within half a step of the originals: keys per channel, values per token.
        var kq = new float[G * hd]; var vq = new float[G * hd]; var pq = new int[G];
        for (int b = 0; b < quantized / G; b++)
        {
            cache.Quantized.Dequantize(0, 1, b, kq, vq, pq);
            for (int t = 0; t < G; t++)
            {
                int i = b * G + t;
                Assert.Equal(100 + i, pq[t]);
                float vmin = Enumerable.Range(0, hd).Min(d => v[i * hd + d]), vmax = Enumerable.Range(0, hd).Max(d => v[i * hd + d]);
                for (int d = 0; d < hd; d++)
                {
                    var col = Enumerable.Range(b * G, G).Select(j => k[j * hd + d]).ToArray();
                    double keyStep = (col.Max() - col.Min()) / 15.0 * (1 + 1.0 / 512) + 1e-4;
                    Assert.True(Math.Abs(k[i * hd + d] - kq[t * hd + d]) <= keyStep / 2 + 1e-5);
                    Assert.True(Math.Abs(v[i * hd + d] - vq[t * hd + d]) <= (vmax - vmin) / 15.0 * (1 + 1.0 / 512) / 2 + 1e-4);
                }
            }
        }
        cache.Clear();
        Assert.Equal(0, cache.AllocatedBytes);
        Assert.Equal(0, cache.Pool.EntriesInUse);
    }

    /// <summary>Attention over a quantized cache is the kernel's attention over the dequantized values:
    /// the store gathers each KV head's query heads, dequantizes the head and scatters the output back.</summary>
    [Fact]
    public void QuantizedAttentionIsAttentionOverDequantizedValues()
    {
        int hd = 16, kvHeads = 2, numHeads = 4, n = 45, rows = 3;
        var q = new KvQuantization(4, 8, 5);
        var cache = new KvCache(1, kvHeads, hd, pageSize: 8, quantization: q);
        var plain = new KvCache(1, kvHeads, hd, pageSize: 8);
        var rng = new Random(3);
        float[] R(int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        for (int h = 0; h < kvHeads; h++) cache[0, h].Append(R(n * hd), R(n * hd), 0, hd, Enumerable.Range(0, n).ToArray());
        cache.Quantized!.Flush(0, cache.Layer(0));
        var kb = new float[8 * hd]; var vb = new float[8 * hd]; var pb = new int[8];
        for (int h = 0; h < kvHeads; h++)
        {
            for (int b = 0; b < cache.QuantizedEntries(0, h) / 8; b++)
            {
                cache.Quantized.Dequantize(0, h, b, kb, vb, pb);
                plain[0, h].Append(kb, vb, 0, hd, pb);
            }
            var res = cache[0, h];
            for (int i = 0; i < res.Count; i++) plain[0, h].Append(res.Key(i), res.Value(i), 0, hd, [res.Position(i)]);
            // This step's own rows come last, in full precision, in both caches.
            var (k, v) = (R(rows * hd), R(rows * hd));
            int[] pos = [n, n + 1, n + 2];
            cache[0, h].Append(k, v, 0, hd, pos);
            plain[0, h].Append(k, v, 0, hd, pos);
        }
        var query = R(rows * numHeads * hd);
        var expected = new float[query.Length];
        var actual = new float[query.Length];
        Attention.Layer(query, rows, numHeads, plain.Layer(0), 0.25f, expected);
        cache.Quantized.Attend(0, cache.Layer(0), query, rows, numHeads, 0.25f, actual);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 5);
        Assert.True(cache.TransientPeakBytes > 0 && cache.TransientPeakBytes <= 8 * cache.Pool.BytesPerPage);
    }

    [Fact]
    public void EightBitAttentionIsCloseAndAFullResidualIsExact()
    {
        var w = TinyModels.Weights(TinyModels.Config(), seed: 91);
        var model = new LlamaModel(w);
        var prompt = TinyModels.Tokens(60, w.Config.VocabSize, seed: 92);
        int V = w.Config.VocabSize;
        float[] Logits(KvStorage? storage)
        {
            var all = new float[prompt.Length * V];
            new Session(model, new FullAttention(), chunking: 13, storage, pageSize: 4).Prefill(prompt, all);
            return all;
        }
        var full = Logits(null);
        var exact = Logits(Quantized(4, 4, residual: 1000));
        var eight = Logits(Quantized(8, 4, residual: 2));
        var two = Logits(Quantized(2, 4, residual: 2));
        double scale = full.Max(Math.Abs);
        double Err(float[] x) => full.Zip(x, (a, b) => Math.Abs(a - b)).Max() / scale;
        var four = Logits(Quantized(4, 4, residual: 2));
        Assert.True(Err(exact) < 1e-6, $"full residual: {Err(exact)}");
        // This tiny random model is sensitive (sharp attention): measured 1.5%, 16%, 75% of the logit scale.
        Assert.True(Err(eight) < 3e-2, $"8-bit: {Err(eight)}");
        Assert.True(Err(eight) < Err(four) / 4 && Err(four) < Err(two), $"errors 8/4/2 bits: {Err(eight)} {Err(four)} {Err(two)}");
    }

    [Fact]
    public void MeasuredBitsEqualTheAccountantAndBytesShrink()
    {
        var c = TinyModels.Config() with { HeadDim = 16, NumHeads = 4, NumKvHeads = 2 };
        var model = new LlamaModel(TinyModels.Weights(c, seed: 93));
        int heads = c.NumLayers * c.NumKvHeads;
        var rng = new Random(8);
        for (int trial = 0; trial < 12; trial++)
        {
            int n = rng.Next(1, 90), m = rng.Next(0, 12), chunk = rng.Next(1, 40);
            var q = new KvQuantization(new[] { 2, 4, 8 }[trial % 3], new[] { 1, 4, 8, 16 }[trial % 4], rng.Next(0, 20));
            var prompt = TinyModels.Tokens(n, c.VocabSize, seed: trial);
            var run = new Session(model, new FullAttention(), chunk, new KvStorage(Quantization: q), pageSize: 8).Run(prompt, m);
            var expected = KvFootprint.Quantized(new ChunkPlan(n, chunk), m, q);
            Assert.Equal(heads * expected.EntryBits, run.EntryBits);
            Assert.Equal(expected.Footprint, run.Footprint, 12);
            Assert.Equal(expected.PeakKv, run.PeakKv, 12);
        }
        // 4 bits, a short residual: a much smaller cache than fp32, with the dequantized view only one KV head.
        var longPrompt = TinyModels.Tokens(400, c.VocabSize, seed: 94);
        var fp = new Session(model, new FullAttention(), 64).Run(longPrompt, 4);
        var q4 = new Session(model, new FullAttention(), 64, Quantized(4, 32, 32)).Run(longPrompt, 4);
        Assert.True(q4.PeakKvBytes < fp.PeakKvBytes / 2, $"4-bit {q4.PeakKvBytes} vs fp32 {fp.PeakKvBytes}");
        // What it holds at the end, byte for byte: per head, 352 of 404 entries as codes (11 blocks of 32), 52 in one fp32 page.
        var kq = new KvQuantization(4, 32, 32);
        Assert.Equal(heads * (11 * kq.BlockBytes(16) + 1 * (64L * (2 * 16 * 4 + 4))), q4.FinalBytes);
        Assert.True(q4.PeakTransientBytes < fp.PeakKvBytes / heads * 2);
        Assert.Equal(fp.FinalEntries, q4.FinalEntries);                         // nothing evicted
        Assert.Equal(fp.PeakHeldEntries, q4.PeakHeldEntries);                   // an entry moved to codes counts once
        Assert.InRange(q4.Footprint, 0.25, 0.5);
    }

    [Theory]
    [InlineData(ScheduleKind.Naive)]
    [InlineData(ScheduleKind.Patched)]
    public void Token_eviction_over_quantized_storage_measures_what_the_accountant_counts(ScheduleKind kind)
    {
        // Storage apart from eviction: SnapKV decides what to keep, the storage how it is held (4-bit codes behind a
        // full-precision window); the footprint in bits equals the accountant's, entry for entry.
        var c = TinyModels.Config() with { HeadDim = 16 };
        var model = new LlamaModel(TinyModels.Weights(c, seed: 95));
        int heads = c.NumLayers * c.NumKvHeads;
        var rng = new Random(9);
        for (int trial = 0; trial < 6; trial++)
        {
            int n = rng.Next(40, 120), m = rng.Next(0, 8), chunk = rng.Next(12, 40);
            var q = new KvQuantization(new[] { 2, 4, 8 }[trial % 3], new[] { 4, 8 }[trial % 2], rng.Next(0, 12));
            var schedule = new EvictionSchedule { Kind = kind, Budget = EvictionBudget.Fraction(0.6), Window = 4 };
            var prompt = TinyModels.Tokens(n, c.VocabSize, seed: 100 + trial);
            var run = new Session(model, new ScheduledEviction(new SnapKV(), schedule), chunk, new KvStorage(Quantization: q), pageSize: 4).Run(prompt, m);
            var expected = KvFootprint.Scheduled(new ChunkPlan(n, chunk), m, schedule, q);
            Assert.Equal(heads * expected.EntryBits, run.EntryBits);
            Assert.Equal(expected.Footprint, run.Footprint, 12);
            Assert.Equal(expected.PeakKv, run.PeakKv, 12);
            Assert.True(run.EntryBits < 16 * run.Entries, "some of what the rows saw was codes");
            var fp32 = new Session(model, new ScheduledEviction(new SnapKV(), schedule), chunk, pageSize: 4).Run(prompt, m);
            Assert.Equal(fp32.Entries, run.Entries);                                   // the same entries kept, fewer bits
        }
    }

    [Fact]
    public void Streaming_heads_over_quantized_storage_evict_codes_and_match_the_accountant()
    {
        var c = TinyModels.Config() with { HeadDim = 16 };
        var model = new LlamaModel(TinyModels.Weights(c, seed: 96));
        var q = new KvQuantization(4, 4, 6);
        foreach (var (sink, window, chunk) in new[] { (2, 20, 16), (5, 9, 7), (0, 30, 64) })
        {
            var prompt = TinyModels.Tokens(90, c.VocabSize, seed: sink + window);
            var session = new Session(model, new Streaming(sink, window), chunk, new KvStorage(Quantization: q), pageSize: 4);
            var run = session.Run(prompt, 5);
            var expected = KvFootprint.Duo(new ChunkPlan(90, chunk), 5, 1.0, sink, window, q);
            Assert.Equal(expected.Footprint, run.Footprint, 12);
            Assert.Equal(expected.PeakKv, run.PeakKv, 12);
            // What a head keeps: its sinks (quantized) and its window, by position.
            var held = Enumerable.Range(0, session.Cache.Count(0, 0)).ToList();
            Assert.Equal(Math.Min(95, sink + window), held.Count);
            var view = session.Cache.View(0, 0, 0, out int offset);
            Assert.Equal(0, offset);
            var positions = Enumerable.Range(0, view.Count).Select(view.Position).ToArray();
            Assert.Equal([.. Enumerable.Range(0, sink), .. Enumerable.Range(95 - window, window)], positions);
        }
    }

    [Fact]
    public void Keeping_some_quantized_entries_keeps_their_codes_scales_and_positions()
    {
        int hd = 8;
        var q = new KvQuantization(4, 4, 0);
        var cache = new KvCache(1, 1, hd, pageSize: 4, quantization: q);
        var rng = new Random(3);
        var k = Enumerable.Range(0, 12 * hd).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        var v = Enumerable.Range(0, 12 * hd).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        cache[0, 0].Append(k, v, 0, hd, Enumerable.Range(100, 12).ToArray());
        cache.EndLayerStep(0);
        Assert.Equal(12, cache.QuantizedEntries(0, 0));
        var before = cache.View(0, 0, 0, out _);
        var keysBefore = Enumerable.Range(0, 12).Select(i => before.Key(i).ToArray()).ToArray();
        var valuesBefore = Enumerable.Range(0, 12).Select(i => before.Value(i).ToArray()).ToArray();
        long bytes = cache.AllocatedBytes;
        int[] keep = [0, 3, 4, 5, 6, 11];   // block 0 partly, block 1 whole, block 2 partly
        cache.Keep(0, 0, keep);
        Assert.Equal(6, cache.Count(0, 0));
        Assert.True(cache.AllocatedBytes < bytes, "evicted codes are freed");
        Assert.Equal(6, cache.LiveEntries);
        var after = cache.View(0, 0, 0, out _);
        for (int j = 0; j < keep.Length; j++)
        {
            Assert.Equal(100 + keep[j], after.Position(j));
            Assert.Equal(keysBefore[keep[j]], after.Key(j).ToArray());
            Assert.Equal(valuesBefore[keep[j]], after.Value(j).ToArray());
        }
        cache.KeepSinkAndWindow(0, 0, 1, 2);
        var last = cache.View(0, 0, 0, out _);
        Assert.Equal([100, 106, 111], Enumerable.Range(0, 3).Select(last.Position));
    }

    [Fact]
    public void Post_fill_eviction_runs_over_quantized_storage_and_the_accountant_says_why_it_cannot_count_it()
    {
        var c = TinyModels.Config() with { HeadDim = 16 };
        var model = new LlamaModel(TinyModels.Weights(c, seed: 97));
        var q = new KvQuantization(4, 4, 4);
        var schedule = EvictionSchedule.PostFill(EvictionBudget.Absolute(24), window: 4) with { CapacityMultiple = 1 };
        var prompt = TinyModels.Tokens(80, c.VocabSize, seed: 98);
        var session = new Session(model, new ScheduledEviction(new SnapKV(), schedule), 16, new KvStorage(Quantization: q), pageSize: 4);
        session.Run(prompt, 2);
        for (int l = 0; l < c.NumLayers; l++)
            for (int h = 0; h < c.NumKvHeads; h++)
                Assert.Equal(24 + 2, session.Cache.Count(l, h));   // the budget held, over codes and full precision alike
        Assert.Contains("decided by scores", Assert.Throws<ArgumentException>(() => KvFootprint.Scheduled(new ChunkPlan(80, 16), 2, schedule, q)).Message);
    }

    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.5f, (ushort)0xC020)]
    [InlineData(1.00390625f, (ushort)0x3F80)]   // exactly half way between 0x3F80 and 0x3F81: to the even one
    [InlineData(1.01171875f, (ushort)0x3F82)]   // half way between 0x3F81 and 0x3F82: to the even one
    [InlineData(1.0078125f, (ushort)0x3F81)]    // representable
    public void Bf16_rounds_to_nearest_even(float x, ushort bits) => Assert.Equal(bits, Float16.ToBf16(x));

    [Fact]
    public void Sixteen_bit_storage_halves_the_bytes_keeps_the_footprint_and_stays_close()
    {
        var c = TinyModels.Config() with { HeadDim = 16 };
        var model = new LlamaModel(TinyModels.Weights(c, seed: 99));
        var prompt = TinyModels.Tokens(200, c.VocabSize, seed: 100);
        int V = c.VocabSize;
        var schedule = EvictionSchedule.Naive(EvictionBudget.Fraction(0.5), window: 4);
        float[] Run(KvStorage? storage, out RunResult r)
        {
            var s = new Session(model, new ScheduledEviction(new SnapKV(), schedule), 32, storage, pageSize: 8);
            var all = new float[prompt.Length * V];
            s.Prefill(prompt, all);
            s.Generate(4);
            r = s.Result(prompt.Length, [], 0, 0);
            return all;
        }
        var fp32 = Run(null, out var r32);
        double scale = fp32.Max(Math.Abs);
        foreach (var (q, tol) in new[] { (KvQuantization.Float16(false, 8), 2e-3), (KvQuantization.Float16(true, 8), 2e-2) })
        {
            var x = Run(new KvStorage(Quantization: q), out var r16);
            double err = fp32.Zip(x, (a, b) => Math.Abs(a - b)).Max() / scale;
            Assert.True(err < tol, $"{q.Name}: logits differ by {err:E2} of the scale");
            Assert.True(err > 0, $"{q.Name}: the values really were rounded");
            Assert.Equal(r32.Footprint, r16.Footprint, 12);        // a 16-bit entry is the paper's unit: the footprint is the same…
            Assert.True(r16.FinalBytes < 0.6 * r32.FinalBytes, $"{q.Name}: {r16.FinalBytes} bytes vs fp32 {r32.FinalBytes}");   // …the bytes about half
        }
        Assert.Equal(KvFootprint.Scheduled(new ChunkPlan(200, 32), 4, schedule).Footprint,
                     KvFootprint.Scheduled(new ChunkPlan(200, 32), 4, schedule, KvQuantization.Float16(false, 8)).Footprint, 12);
    }

    private static KvStorage Quantized(int bits, int group, int residual) => new(Quantization: new KvQuantization(bits, group, residual));
}
