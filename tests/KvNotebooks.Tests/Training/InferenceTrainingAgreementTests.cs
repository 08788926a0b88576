using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Training;
using Xunit.Abstractions;

namespace KvNotebooks.Tests.Training;

/// <summary>The inference engine (<see cref="LlamaModel"/>, chunked pre-fill) and the trainer (<see cref="TrainableLlama"/>)
/// give the same logits on the same weights, so a model trained by one is the model the other evaluates: on the shipped
/// model, and on a tied GQA model with Qwen2 biases and llama3 RoPE.</summary>
public class InferenceTrainingAgreementTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new() { "kvnb-small", "tied-bias-llama3" };

    [Theory]
    [MemberData(nameof(Models))]
    public void LlamaModelAndTrainableLlamaGiveTheSameLogits(string which)
    {
        var w = which == "kvnb-small"
            ? LlamaWeights.Load(Path.Combine(TestPaths.RepoRoot, "data", "models", "kvnb-small"))
            : TrainableLlamaTests.RandomWeights(TrainableLlamaTests.Tiny(tied: true, bias: true) with
              {
                  RopeScaling = new RopeScaling("llama3", 8, 1, 4, 16), NumLayers = 3,
              }, 5);
        var c = w.Config;
        const int T = 300;
        var rng = new Random(3);
        var tokens = Enumerable.Range(0, T).Select(_ => rng.Next(c.VocabSize)).ToArray();

        var inference = new float[T * c.VocabSize];
        using (var s = new Session(new LlamaModel(w), new FullAttention(), chunking: 128)) s.Prefill(tokens, inference);
        var all = Enumerable.Range(0, T).ToArray();
        var trainer = new TrainableLlama(w);
        trainer.Forward(tokens, all, all.Select(t => tokens[(t + 1) % T]).ToArray());
        var training = trainer.Logits;

        double worst = 0;
        for (int r = 0; r < T; r++)
        {
            double diff = 0, scale = 0;
            for (int v = r * c.VocabSize; v < (r + 1) * c.VocabSize; v++)
            {
                diff = Math.Max(diff, Math.Abs(inference[v] - training[v]));
                scale = Math.Max(scale, Math.Abs(training[v]));
            }
            worst = Math.Max(worst, diff / scale);
        }
        output.WriteLine($"{which}: worst row max |inference − training| / max |logit| = {worst:E2}");
        // The two paths sum in different orders (the inference GEMM's micro-kernel tiles: AVX-512, or its AVX2 twins on
        // machines without it, against the trainer's), so they agree to fp32 rounding, not bit for bit: about 2e-5 of
        // the largest logit after four layers at 4K here. A real divergence (a missing scale, a wrong RoPE position) is
        // orders of magnitude larger.
        Assert.True(worst <= 5e-5, $"{which}: inference and training logits differ by {worst:E2} of a row's largest logit");
    }
}
