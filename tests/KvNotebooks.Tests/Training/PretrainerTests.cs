using KvNotebooks.Tasks;
using KvNotebooks.Training.Pretraining;

namespace KvNotebooks.Tests.Training;

public class PretrainerTests
{
    private const string Model = """
        "model": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 576, "hidden_size": 32,
                  "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                  "head_dim": 8, "rope_theta": 1000000.0, "max_position_embeddings": 4096, "tie_word_embeddings": true}
        """;

    private const string Stages = """
        [{"length": 128, "batch": 2, "steps": 4, "lr": 0.003, "tasks": {"niah_mk": 1, "copy": 1}},
         {"length": 160, "batch": 1, "steps": 4, "lr": 0.003, "end_lr": 0.001}]
        """;

    private static string Config() =>
        "{" + Model + """, "seed": 3, "warmup_steps": 2, "checkpoint_every": 3, "eval_every": 100, "eval_examples": 1, "log_every": 1, "stages": """ + Stages + "}";

    private static string TempDir() => Path.Combine(Path.GetTempPath(), $"kvnb-train-{Guid.NewGuid():N}");

    [Fact]
    public void Stages_and_learning_rates_follow_the_config()
    {
        var c = PretrainConfig.Parse(Config(), "test");
        Assert.Equal(8, c.TotalSteps);
        Assert.Equal((0, 0), c.StageOf(0));
        Assert.Equal((1, 0), c.StageOf(4));
        Assert.Equal(0.0015, c.LearningRate(0), 12);      // warmup 1/2
        Assert.Equal(0.003, c.LearningRate(1), 12);
        Assert.Equal(0.003, c.LearningRate(4), 12);       // stage 2 starts at lr …
        Assert.Equal(0.001, c.LearningRate(7), 12);       // … and ends at end_lr
        Assert.Equal(c.ToJson(), PretrainConfig.Parse(c.ToJson(), "round trip").ToJson());
    }

    [Theory]
    [InlineData("""{"stages": []}""", "model")]
    [InlineData("""{ MODEL, "stages": [] }""", "no stages")]
    [InlineData("""{ MODEL, "stages": [{"length": 128, "batch": 1, "steps": 0, "lr": 0.1}] }""", "stage 1")]
    [InlineData("""{ MODEL, "stages": [{"length": 128, "batch": 1, "steps": 2, "lr": 0.1, "tasks": {"nope": 1}}] }""", "unknown task 'nope'")]
    [InlineData("""{ MODEL, "stages": [{"length": 64, "batch": 1, "steps": 2, "lr": 0.1}] }""", "at least 128")]
    [InlineData("""{ MODEL, "learning_rate": 1, "stages": [] }""", "learning_rate")]
    [InlineData("""{ MODEL, "stages": [{"length": 128, "batch": 1, "steps": 2, "lr": 0.1, "questions": {"table": 2}}] }""", "2 questions of table")]
    [InlineData("""{ MODEL, "stages": [{"length": 128, "batch": 1, "steps": 2, "lr": 0.1, "questions": {"niah_mk": 0}}] }""", "must be ≥ 1")]
    public void Bad_configs_name_the_problem(string json, string expected)
    {
        var e = Assert.ThrowsAny<Exception>(() => PretrainConfig.Parse(json.Replace("MODEL", Model), "cfg.json"));
        Assert.True(e is KvNotebooks.Validation.InputException, e.GetType().Name);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Batches_are_a_function_of_the_step_only()
    {
        var c = PretrainConfig.Parse(Config(), "test");
        var a = new Pretrainer(c, TempDir()).Batch(5);
        var b = new Pretrainer(c, TempDir()).Batch(5);
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(a.Targets, b.Targets);
        Assert.Equal(160, a.Tokens.Length);
        Assert.NotEqual(a.Tokens, new Pretrainer(c, TempDir()).Batch(6).Tokens);
        Assert.Equal(2 * 128, new Pretrainer(c, TempDir()).Batch(0).Tokens.Length);
    }

    /// <summary>A run stopped after 5 steps and resumed (from the checkpoint at step 3) writes the same
    /// loss log, bit for bit, and the same final weights as a run straight through.</summary>
    [Fact]
    public void A_killed_run_resumes_with_the_identical_loss_sequence()
    {
        var c = PretrainConfig.Parse(Config(), "test");
        string straight = TempDir(), resumed = TempDir();
        try
        {
            var s = new Pretrainer(c, straight); s.OpenRun(); s.Train();
            var r1 = new Pretrainer(c, resumed); r1.OpenRun(); r1.Train(maxSteps: 5);
            // simulate a kill after step 5: the checkpoint on disk is step 3's; drop the final one written at stop
            var again = new Pretrainer(c, resumed); again.OpenRun();
            Assert.Equal(5, again.Step);
            again.Train();
            string Losses(string dir) => string.Join('\n', File.ReadAllLines(Path.Combine(dir, "loss.csv")).Select(l => string.Join(',', l.Split(',')[..8])));
            Assert.Equal(Losses(straight), Losses(resumed));
            Assert.Equal(9, File.ReadAllLines(Path.Combine(resumed, "loss.csv")).Length);
            Assert.Equal(s.Weights.Layers[1].WDown, again.Weights.Layers[1].WDown);
            Assert.True(File.Exists(Path.Combine(resumed, "model", "tokenizer.json")));
        }
        finally
        {
            foreach (var d in new[] { straight, resumed }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Fact]
    public void Rows_logged_after_the_last_checkpoint_are_dropped_on_resume()
    {
        var c = PretrainConfig.Parse(Config(), "test");
        string dir = TempDir();
        try
        {
            var r = new Pretrainer(c, dir); r.OpenRun(); r.Train(maxSteps: 3);
            File.AppendAllText(Path.Combine(dir, "loss.csv"), "4,1,128,2,256,9.9,0.003,1,0\n"); // a row from a killed run
            var again = new Pretrainer(c, dir); again.OpenRun();
            Assert.Equal(3, again.Step);
            Assert.Equal(4, File.ReadAllLines(Path.Combine(dir, "loss.csv")).Length); // header + 3 steps
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_config_that_differs_before_the_checkpoint_is_refused()
    {
        string dir = TempDir();
        try
        {
            var r = new Pretrainer(PretrainConfig.Parse(Config(), "a"), dir); r.OpenRun(); r.Train(maxSteps: 2);
            var other = PretrainConfig.Parse(Config().Replace("\"seed\": 3", "\"seed\": 4"), "b");
            Assert.Contains("differs from this one at step 1", Assert.Throws<KvNotebooks.Validation.InputException>(() => new Pretrainer(other, dir).OpenRun()).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_curriculum_ahead_of_the_checkpoint_may_change()
    {
        var c = PretrainConfig.Parse(Config(), "a");
        string dir = TempDir();
        try
        {
            var r = new Pretrainer(c, dir); r.OpenRun(); r.Train(maxSteps: 5);
            // stage 2 gets more steps and a third stage: steps 1–5 are unchanged, so the run continues
            var longer = PretrainConfig.Parse(Config().Replace("\"steps\": 4, \"lr\": 0.003, \"end_lr\"", "\"steps\": 6, \"lr\": 0.003, \"end_lr\""), "b");
            Assert.Equal(5, PretrainConfig.FirstDifferentStep(c, longer)); // the end_lr ramp of stage 2 stretches from its second step
            var again = new Pretrainer(longer, dir); again.OpenRun();
            Assert.Equal(5, again.Step);
            // but a change to stage 1 (already run) is refused
            var changed = PretrainConfig.Parse(Config().Replace("\"lr\": 0.003, \"tasks\"", "\"lr\": 0.002, \"tasks\""), "c");
            Assert.Contains("differs from this one at step 1", Assert.Throws<KvNotebooks.Validation.InputException>(() => new Pretrainer(changed, dir).OpenRun()).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_stage_can_ask_more_questions_and_that_changes_the_data_from_that_stage_on()
    {
        var c = PretrainConfig.Parse(Config(), "a");
        var more = PretrainConfig.Parse(Config().Replace("\"end_lr\": 0.001}", "\"end_lr\": 0.001, \"questions\": {\"niah_mk\": 6}}"), "b");
        Assert.Equal(4, PretrainConfig.FirstDifferentStep(c, more));
        var stage2 = more.Stages[1];
        Assert.Equal(6, stage2.QuestionsFor(TaskSuite.Get("niah_mk")));
        Assert.Equal(TaskSuite.Get("rag").TrainingQuestions, stage2.QuestionsFor(TaskSuite.Get("rag")));
        var t = new Pretrainer(more, TempDir());
        for (int step = 4; step < 8; step++)
        {
            var (tok, pos, tgt) = t.Batch(step);
            Assert.Equal(160, tok.Length);
            Assert.Equal(tok.Length, new Pretrainer(c, TempDir()).Batch(step).Tokens.Length);
        }
    }

    /// <summary>init_model: a run starts from a model folder's weights (fine-tuning), with the optimizer
    /// fresh; a folder of another architecture is refused by name; configs without it keep their JSON.</summary>
    [Fact]
    public void A_run_can_start_from_a_model_folder()
    {
        string src = TempDir(), dir = TempDir();
        try
        {
            var c = PretrainConfig.Parse(Config(), "a");
            var first = new Pretrainer(c, src); first.OpenRun(); first.Train(maxSteps: 3);
            Assert.DoesNotContain("init_model", c.ToJson());

            var tuned = c with { InitModel = first.ModelDir };
            Assert.Contains("init_model", tuned.ToJson());
            Assert.Equal(tuned.ToJson(), PretrainConfig.Parse(tuned.ToJson(), "round trip").ToJson());
            var t = new Pretrainer(tuned, dir);
            Assert.Equal(first.Weights.Layers[1].Wq, t.Weights.Layers[1].Wq);
            Assert.Equal(first.Weights.Embedding, t.Weights.Embedding);
            Assert.Same(t.Weights.Embedding, t.Weights.LmHead);               // still tied: one trained array
            Assert.NotEqual(new Pretrainer(c, TempDir()).Weights.Embedding, t.Weights.Embedding);
            t.OpenRun();
            Assert.Equal(0, t.Step);
            t.Train(maxSteps: 1);
            Assert.NotEqual(first.Weights.Layers[1].Wq, t.Weights.Layers[1].Wq);
            // Resuming needs only the checkpoint, not the folder the run started from.
            var tunedWq = t.Weights.Layers[1].Wq.ToArray();
            Directory.Delete(src, true);
            var resumed = new Pretrainer(tuned, dir); resumed.OpenRun();
            Assert.Equal(1, resumed.Step);
            Assert.Equal(tunedWq, resumed.Weights.Layers[1].Wq);

            first.ExportModel(first.ModelDir);  // the model folder again, for the next check
            var wider = PretrainConfig.Parse(Config().Replace("\"intermediate_size\": 48", "\"intermediate_size\": 64"), "b") with { InitModel = first.ModelDir };
            var e = Assert.Throws<KvNotebooks.Validation.InputException>(() => new Pretrainer(wider, TempDir()));
            Assert.Contains("init_model", e.Message);
            Assert.Contains("mlp.gate_proj", e.Message);
        }
        finally
        {
            foreach (var d in new[] { src, dir }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Fact]
    public void Training_lowers_the_answer_loss_on_a_fixed_batch()
    {
        var c = PretrainConfig.Parse(Config(), "test");
        var t = new Pretrainer(c, TempDir());
        var (tok, pos, tgt) = t.Batch(0);
        double first = t.Model.Forward(tok, pos, tgt, 2);
        var opt = new KvNotebooks.Training.AdamW(t.Model.Parameters, KvNotebooks.Training.AdamW.DefaultGroups(3e-3, 0.0));
        double last = first;
        for (int i = 0; i < 30; i++) { t.Model.ZeroGrad(); last = t.Model.ForwardBackward(tok, pos, tgt, 1f, 2); opt.Step(); }
        Assert.True(last < first - 1.0, $"loss {first} → {last}");
        Assert.Equal(Vocabulary.Default.Size, c.Model.VocabSize);
    }
}
