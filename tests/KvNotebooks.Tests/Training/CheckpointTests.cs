using KvNotebooks.Training;
using KvNotebooks.Training.Ops;

namespace KvNotebooks.Tests.Training;

public class CheckpointTests
{
    private static readonly int[][] Data =
    [
        [1, 5, 9, 2, 7, 7, 3, 0, 11, 4], [8, 8, 2, 19, 22, 5, 6, 1, 0, 13], [4, 4, 4, 9, 1, 2, 3, 17, 17, 6],
    ];

    private sealed class Run
    {
        public readonly TrainableLlama Model;
        public readonly AdamW Opt;
        public Run(int seed, int totalSteps)
        {
            Model = new TrainableLlama(WeightInit.Normal(TrainableLlamaTests.Tiny(), seed, std: 0.1f));
            Model.EnableGates(KeyVisibility.Streaming(1, 3), z0: 0.7f); // gates ride along as checkpoint extras
            Model.Visibility[0][0] = KeyVisibility.Full;
            Model["model.layers.0.mlp.up_proj.weight"].Frozen = true;
            Opt = new AdamW(Model.Parameters, AdamW.DefaultGroups(3e-3), new LrSchedule(2, totalSteps, LrDecay.Cosine, 0.1));
        }

        public Dictionary<string, float[]> Extras() =>
            Enumerable.Range(0, Model.Config.NumLayers).ToDictionary(l => $"gates.{l}", l => Model.Gates![l]);

        /// <summary>One step; the sequence depends only on the step number, so a resumed run sees the same data.</summary>
        public double Step()
        {
            var seq = Data[Opt.StepCount % Data.Length];
            int[] pos = [1, 4, 7];
            Model.ZeroGrad();
            double loss = Model.ForwardBackward(seq, pos, pos.Select(p => seq[p + 1]).ToArray());
            Opt.Step();
            for (int l = 0; l < Model.Config.NumLayers; l++) // a toy gate update so gates change over time
                for (int g = 0; g < Model.Config.NumKvHeads; g++)
                    Model.Gates![l][g] = Math.Clamp(Model.Gates[l][g] - 0.01f * Model.GateGrads![l][g], 0f, 1f);
            return loss;
        }
    }

    [Fact]
    public void ResumingFromACheckpointReproducesTheUninterruptedRun()
    {
        const int N = 8, K = 3;
        var straight = new Run(seed: 4, N);
        var expected = Enumerable.Range(0, N).Select(_ => straight.Step()).ToList();

        string dir = Path.Combine(Path.GetTempPath(), "kvnb-ckpt-" + Guid.NewGuid().ToString("N"));
        string path = Path.Combine(dir, "ckpt.bin");
        try
        {
            var first = new Run(seed: 4, N);
            var losses = Enumerable.Range(0, K).Select(_ => first.Step()).ToList();
            Checkpoint.Save(path, first.Opt, first.Extras());
            Assert.False(File.Exists(path + ".tmp"));

            var resumed = new Run(seed: 99, N); // different init: everything must come from the file
            Checkpoint.Load(path, resumed.Opt, resumed.Extras());
            Assert.Equal(K, resumed.Opt.StepCount);
            losses.AddRange(Enumerable.Range(0, N - K).Select(_ => resumed.Step()));
            Assert.Equal(expected, losses); // bitwise identical
            for (int i = 0; i < straight.Model.Parameters.Count; i++)
                Assert.Equal(straight.Model.Parameters[i].Value, resumed.Model.Parameters[i].Value);

            // saving again overwrites atomically; a mismatched model is refused
            Checkpoint.Save(path, resumed.Opt, resumed.Extras());
            var tied = new TrainableLlama(WeightInit.Normal(TrainableLlamaTests.Tiny(tied: true), 1));
            Assert.Throws<KvNotebooks.Validation.InputException>(() => Checkpoint.Load(path, new AdamW(tied.Parameters, AdamW.DefaultGroups(1e-3))));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
