using KvNotebooks.Footprint;
using System.Numerics.Tensors;
using KvNotebooks.Evaluation;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;
using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.Evaluation;

public class FollowUpTests
{
    private static LlamaModel Model() => new(LlamaWeights.Random(new LlamaConfig
    {
        VocabSize = Vocabulary.Default.Size, HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = 2,
        HeadDim = 8, RopeTheta = 1e6, MaxPositionEmbeddings = 4096,
    }, seed: 7, std: 0.2f));

    [Fact]
    public void Two_question_examples_ask_about_different_keys_of_one_context()
    {
        var task = TaskSuite.Get("json_kv");
        var exs = FollowUp.Examples(task, 512, 3);
        Assert.Equal(3, exs.Count);
        Assert.All(exs, e => Assert.NotEqual(e.Questions[0].Question, e.Questions[1].Question));
        Assert.Equal(exs[1].Context, FollowUp.Examples(task, 512, 2)[1].Context); // fixed seeds
    }

    [Fact]
    public void Under_full_attention_the_second_answer_is_what_one_prompt_holding_the_whole_dialogue_gives()
    {
        var model = Model();
        var task = TaskSuite.Get("niah_mk");
        var ex = FollowUp.Examples(task, 256, 1)[0];
        var r = FollowUp.Run(model, EvalMethod.For(MethodSpec.Full, 64), task, ex);
        int eos = Vocabulary.Default.EosId, max = task.MaxAnswerTokens(256);
        var s = new Session(model, new FullAttention());
        s.Prefill([.. ex.Prompt(0), .. r.AnswerA, eos, .. ex.Questions[1].Question]);
        var b = new List<int>();
        for (int t = TensorPrimitives.IndexOfMax(s.LastLogits); t != eos && b.Count < max; t = TensorPrimitives.IndexOfMax(s.LastLogits))
        {
            b.Add(t);
            s.Decode(t);
        }
        Assert.Equal(b, r.AnswerB);
        Assert.Equal(s.Cache.LiveEntries, r.Run.FinalEntries);
    }

    [Fact]
    public void The_cache_compressed_for_question_A_only_grows_by_the_dialogue_afterwards()
    {
        var model = Model();
        var task = TaskSuite.Get("json_kv");
        var ex = FollowUp.Examples(task, 512, 1)[0];
        var spec = MethodSpec.Of("snapkv") with { Schedule = EvictionSchedule.PostFill(EvictionBudget.Absolute(64), window: 16) };
        var r = FollowUp.Run(model, EvalMethod.For(spec, Chunking.None), task, ex);
        var alone = new Session(model, spec.Create(model.Config));
        alone.Prefill(ex.Prompt(0));
        int heads = 2 * 2, dialogue = r.AnswerA.Length + 1 + ex.Questions[1].Question.Length;
        Assert.True(alone.Cache.LiveEntries < heads * ex.Prompt(0).Length / 2, "the post-fill eviction did evict");
        Assert.Equal(alone.Cache.LiveEntries + heads * dialogue, r.EntriesWhenAskedB);
        Assert.InRange(r.ScoreA, 0, 1);
        Assert.InRange(r.ScoreB, 0, 1);
    }
}
