using KvNotebooks.Tasks;

namespace KvNotebooks.Tests.Tasks;

public class TaskSuiteTests
{
    private static readonly Vocabulary V = Vocabulary.Default;
    public static TheoryData<string> TaskNames() => new(TaskSuite.All.Where(t => t is not CopyTask).Select(t => t.Name));

    [Theory]
    [InlineData("json_kv", 32, 8)]
    [InlineData("niah_mk", 32, 4)]
    [InlineData("passkey", 32, 3)]
    public void Too_many_questions_for_the_length_is_a_clear_error(string name, int length, int questions)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => TaskSuite.Get(name).Generate(1, length, questions));
        Assert.Contains(length.ToString(), e.Message);
    }

    [Theory, MemberData(nameof(TaskNames))]
    public void Generators_are_deterministic_and_fill_the_length_exactly(string name)
    {
        var task = TaskSuite.Get(name);
        foreach (int length in new[] { task.MinLength, 300, 1024, 4096 })
            foreach (int q in new[] { 1, task.TrainingQuestions })
            {
                if (length < 128 && q > 1) continue;   // the 32-token curriculum stages ask one question

                var a = task.Generate(42, length, q);
                var b = task.Generate(42, length, q);
                Assert.Equal(a.Context, b.Context);
                Assert.Equal(q, a.Questions.Length);
                Assert.Equal(length, a.TrainingSequence().Tokens.Length);
                Assert.Equal(V.BosId, a.Context[0]);
                Assert.DoesNotContain(V.EosId, a.Prompt());
                Assert.DoesNotContain(V.PadId, a.TrainingSequence().Tokens);
                Assert.All(a.Questions, qa => Assert.True(task.MaxAnswerTokens(length) >= qa.Answer.Length));
                Assert.NotEqual(a.Context, task.Generate(43, length, q).Context);
            }
    }

    [Theory, MemberData(nameof(TaskNames))]
    public void The_gold_answer_scores_one_and_nothing_scores_zero(string name)
    {
        var task = TaskSuite.Get(name);
        for (int seed = 0; seed < 5; seed++)
        {
            var qa = task.Generate(seed, 1024).Questions[0];
            Assert.Equal(1.0, task.Score(qa, qa.Answer), 9);
            Assert.Equal(0.0, task.Score(qa, []), 9);
            Assert.InRange(task.ChanceScore(1024), 0.0, 0.8);
        }
    }

    [Fact]
    public void Training_sequence_targets_are_the_answers_then_eos()
    {
        var ex = TaskSuite.Get("niah_mk").Generate(3, 512, 3);
        var (tokens, pos, tgt) = ex.TrainingSequence();
        Assert.Equal(ex.Questions.Sum(q => q.Answer.Length + 1), pos.Length);
        for (int i = 0; i < pos.Length; i++) Assert.Equal(tokens[pos[i] + 1], tgt[i]);
        Assert.Equal(V.EosId, tokens[^1]);
        Assert.Equal(ex.Prompt(0), tokens[..ex.Prompt(0).Length]);
    }

    /// <summary>Each lookup's answer is really in the context, right after the key the question names.</summary>
    [Fact]
    public void Needle_and_kv_answers_follow_their_key_in_the_context()
    {
        foreach (var name in new[] { "niah_mk", "niah_uuid", "json_kv", "rag", "passkey", "json_kv_hard", "niah_hex", "json_kv_hex" })
            for (int seed = 0; seed < 10; seed++)
            {
                var ex = TaskSuite.Get(name).Generate(seed, 2048, 1);
                var qa = ex.Questions[0];
                int[] pattern = [.. qa.Question[1..], .. qa.Answer]; // the question minus "question", then the answer
                Assert.True(ex.Context.AsSpan().IndexOf(pattern) >= 0, $"{name} seed {seed}: '{V.Text(pattern)}' not in the context");
            }
    }

    /// <summary>The (name, hex piece) keys of a json_kv context's records, in order.</summary>
    private static List<(int Name, int Hex)> JsonKeys(int[] context)
    {
        var keys = new List<(int Name, int Hex)>();
        for (int i = 1; i + 2 < context.Length; i++)
            if (context[i + 2] == V[":"] && V.Names.Contains(context[i])) keys.Add((context[i], context[i + 1]));
        return keys;
    }

    [Fact]
    public void Keys_are_unique_so_every_lookup_has_one_answer()
    {
        for (int seed = 0; seed < 10; seed++)
        {
            var ex = TaskSuite.Get("json_kv").Generate(seed, 4096, 8);
            var keys = JsonKeys(ex.Context);
            Assert.True(keys.Count > 500);
            Assert.Equal(keys.Count, keys.Distinct().Count());
        }
    }

    /// <summary>The hard training variant: keys still unique, but every name and hex piece recurs, so the
    /// name alone (the shortcut a model trained on short json_kv contexts learns) does not find the record.</summary>
    [Theory]
    [InlineData(64)]
    [InlineData(512)]
    [InlineData(4096)]
    public void Hard_json_kv_keys_are_unique_pairs_of_recurring_pieces(int length)
    {
        var hard = TaskSuite.Get("json_kv_hard");
        Assert.Same(JsonKv.Hard, hard);
        Assert.DoesNotContain(hard, TaskSuite.Scored);
        double nameOnly = 0, asked = 0;
        for (int seed = 0; seed < 10; seed++)
        {
            var ex = hard.Generate(seed, length, length < 128 ? 1 : 8);
            var keys = JsonKeys(ex.Context);
            Assert.Equal(keys.Count, keys.Distinct().Count());
            var (pn, ph) = JsonKv.HardPools(keys.Count);
            Assert.True(keys.Select(k => k.Name).Distinct().Count() <= pn);
            Assert.True(keys.Select(k => k.Hex).Distinct().Count() <= ph);
            foreach (var qa in ex.Questions)
            {
                int withName = keys.Count(k => k.Name == qa.Question[1]);
                nameOnly += 1.0 / withName; asked++;               // what matching the name alone would score
                Assert.Contains((qa.Question[1], qa.Question[2]), keys);
            }
        }
        // Name-only matching scores 1/√n-ish here; on the scored task at 512 tokens it would score ~0.7.
        Assert.True(nameOnly / asked < (length <= 64 ? 0.75 : 0.25), $"name-only matching would score {nameOnly / asked:P0} at {length} tokens");
    }

    /// <summary>The hex-decides variant: unique keys whose names are shared by as many records as the hex
    /// pieces allow, so matching the hex piece alone finds the record up to 96 records.</summary>
    [Theory]
    [InlineData(64)]
    [InlineData(256)]
    [InlineData(2048)]
    public void In_hex_json_kv_the_hex_piece_decides(int length)
    {
        var task = TaskSuite.Get("json_kv_hex");
        Assert.Same(JsonKv.HexDecides, task);
        Assert.DoesNotContain(task, TaskSuite.Scored);
        for (int seed = 0; seed < 10; seed++)
        {
            var ex = task.Generate(seed, length, length < 128 ? 1 : 8);
            var keys = JsonKeys(ex.Context);
            Assert.Equal(keys.Count, keys.Distinct().Count());
            int names = keys.Select(k => k.Name).Distinct().Count();
            Assert.True(names <= (keys.Count + V.Hex.Count - 1) / V.Hex.Count, $"{names} names for {keys.Count} records");
            if (keys.Count <= V.Hex.Count)
            {
                Assert.Equal(1, names);
                Assert.Equal(keys.Count, keys.Select(k => k.Hex).Distinct().Count()); // the hex piece alone is a key
            }
            foreach (var qa in ex.Questions) Assert.Contains((qa.Question[1], qa.Question[2]), keys);
        }
    }

    [Fact]
    public void Hex_keyed_needles_are_niah_mk_with_hex_pieces_for_names()
    {
        var hex = TaskSuite.Get("niah_hex");
        Assert.Same(NeedleMultiKey.HexKeys, hex);
        Assert.DoesNotContain(hex, TaskSuite.Scored);
        for (int seed = 0; seed < 10; seed++)
        {
            var ex = hex.Generate(seed, 1024, 4);
            var keys = Enumerable.Range(0, ex.Context.Length - 1).Where(i => ex.Context[i + 1] == V["is"]).Select(i => ex.Context[i]).ToList();
            Assert.Equal(NeedleMultiKey.Needles(1024), keys.Count);
            Assert.All(keys, k => Assert.True(V.Hex.Contains(k)));
            Assert.Equal(keys.Count, keys.Distinct().Count());
            Assert.All(ex.Questions, qa => Assert.True(V.Hex.Contains(qa.Question[^2])));
        }
    }

    /// <summary>The shared-pieces uuid variant: every uuid draws four distinct pieces from one small pool, so
    /// the piece just written rarely tells which comes next, while the asked key's needle still does.</summary>
    [Theory]
    [InlineData(512, 12)]
    [InlineData(4096, 16)]
    public void Shared_piece_uuids_make_copying_by_the_previous_piece_ambiguous(int length, int questions)
    {
        var task = TaskSuite.Get("niah_uuid_pool");
        Assert.Same(NeedleUuid.SharedPieces, task);
        Assert.DoesNotContain(task, TaskSuite.Scored);
        double byPrevious = 0; int pieces = 0;
        for (int seed = 0; seed < 10; seed++)
        {
            var ex = task.Generate(seed, length, questions);
            var ctx = ex.Context;
            var needles = Enumerable.Range(0, ctx.Length - 1).Where(i => ctx[i + 1] == V["is"] && V.Names.Contains(ctx[i]))
                .ToDictionary(i => ctx[i], i => ctx[(i + 2)..(i + 2 + NeedleUuid.Pieces)]);
            Assert.Equal(Math.Max(Haystack.Count(length, 128, 2, 32), questions), needles.Count);
            Assert.True(needles.Values.SelectMany(u => u).Distinct().Count() <= NeedleUuid.SharedPool);
            Assert.All(needles.Values, u => Assert.Equal(NeedleUuid.Pieces, u.Distinct().Count()));
            foreach (var qa in ex.Questions)
            {
                Assert.Equal(needles[qa.Question[^2]], qa.Answer);
                Assert.Equal(1.0, task.Score(qa, qa.Answer));
                // What "copy the token that followed the piece just written" would get right, on average.
                for (int p = 1; p < NeedleUuid.Pieces; p++)
                {
                    var next = Enumerable.Range(0, ctx.Length - 1).Where(i => ctx[i] == qa.Answer[p - 1]).Select(i => ctx[i + 1]).ToList();
                    byPrevious += next.Count(t => t == qa.Answer[p]) / (double)next.Count; pieces++;
                }
            }
        }
        Assert.True(byPrevious / pieces < 0.35, $"the previous piece alone would give {byPrevious / pieces:P0} of later pieces");
    }

    [Fact]
    public void Multi_value_answers_list_the_key_s_three_numbers_in_context_order()
    {
        var ex = TaskSuite.Get("niah_mv").Generate(9, 2048, 1);
        var qa = ex.Questions[0];
        int key = qa.Question[^2];
        var found = new List<int>();
        for (int i = 0; i + 2 < ex.Context.Length; i++)
            if (ex.Context[i] == key && ex.Context[i + 1] == V["is"]) found.Add(ex.Context[i + 2]);
        Assert.Equal(qa.Answer, found);
        Assert.Equal(3, qa.Answer.Distinct().Count());
    }

    /// <summary>The any-order training variants: the scored task's context, the same answer up to the order
    /// the score ignores (niah_mv's values, rerank's ties), and that order really drawn at random.</summary>
    [Theory]
    [InlineData("niah_mv", "niah_mv_any", 2)]
    [InlineData("rerank", "rerank_any", 1)]
    public void Any_order_variants_change_only_the_order_the_score_ignores(string scored, string variant, int questions)
    {
        var (a, b) = (TaskSuite.Get(scored), TaskSuite.Get(variant));
        Assert.Same(variant == "niah_mv_any" ? NeedleMultiValue.AnyOrder : Rerank.AnyOrder, b);
        Assert.DoesNotContain(b, TaskSuite.Scored);
        int reordered = 0;
        for (int seed = 0; seed < 20; seed++)
        {
            var x = a.Generate(seed, 1024, questions);
            var y = b.Generate(seed, 1024, questions);
            Assert.Equal(x.Context, y.Context);
            for (int q = 0; q < questions; q++)
            {
                var (gold, any) = (x.Questions[q], y.Questions[q]);
                Assert.Equal(gold.Question, any.Question);
                if (gold.Grades is { } grades)
                {
                    // Same grade at every rank (a tie at the tenth place may bring in another passage of that
                    // grade), so NDCG@10 of the variant's answer is 1 on the scored task.
                    var grade = gold.GradedIds!.Zip(grades).ToDictionary(p => p.First, p => p.Second);
                    Assert.Equal(gold.Answer.Select(id => grade[id]), any.Answer.Select(id => grade[id]));
                    Assert.Equal(any.Answer.Length, any.Answer.Distinct().Count());
                }
                else Assert.Equal(gold.Answer.Order(), any.Answer.Order());
                Assert.Equal(1.0, a.Score(gold, any.Answer), 9);
                if (!gold.Answer.SequenceEqual(any.Answer)) reordered++;
            }
        }
        Assert.True(reordered >= 10, $"only {reordered} of {20 * questions} answers reordered");
    }

    [Fact]
    public void Variable_chains_resolve_by_following_the_let_statements()
    {
        for (int seed = 0; seed < 10; seed++)
        {
            var ex = TaskSuite.Get("var_track").Generate(seed, 2048, 1);
            var qa = ex.Questions[0];
            var let = new Dictionary<int, int>();
            var c = ex.Context;
            for (int i = 0; i + 3 < c.Length; i++)
                if (c[i] == V["let"] && c[i + 2] == V["="]) let.Add(c[i + 1], c[i + 3]); // Add: each variable assigned once
            int v = qa.Question[1];
            var chain = new List<int>();
            while (!V.Numbers.Contains(v)) { v = let[v]; chain.Add(v); if (!V.Numbers.Contains(v)) chain.Add(V["="]); }
            Assert.Equal(qa.Answer, chain);
        }
    }

    [Fact]
    public void Frequency_gold_is_the_three_most_mentioned_names()
    {
        for (int seed = 0; seed < 10; seed++)
        {
            var ex = TaskSuite.Get("freq").Generate(seed, 4096, 1);
            var counts = ex.Context.Where(V.Names.Contains).GroupBy(t => t).OrderByDescending(g => g.Count()).ToArray();
            Assert.Equal(ex.Questions[0].Answer, counts.Take(3).Select(g => g.Key));
            Assert.True(counts[2].Count() > counts[3].Count(), "the third and fourth must not tie");
        }
    }

    [Fact]
    public void Rerank_grades_count_the_query_words_in_each_passage()
    {
        var ex = TaskSuite.Get("rerank").Generate(4, 4096, 1);
        var qa = ex.Questions[0];
        var query = qa.Question[1..4];
        var c = ex.Context;
        for (int i = 0; i < c.Length; i++)
        {
            if (c[i] != V["["]) continue;
            int id = c[i + 1], end = Array.IndexOf(c, V[";"], i);
            int grade = c[(i + 3)..end].Count(query.Contains);
            Assert.Equal(qa.Grades![Array.IndexOf(qa.GradedIds!, id)], grade);
        }
        var expected = qa.GradedIds!.Zip(qa.Grades!).Where(x => x.Second > 0).OrderByDescending(x => x.Second).Select(x => x.Second).Take(10);
        Assert.Equal(expected, qa.Answer.Select(id => qa.Grades![Array.IndexOf(qa.GradedIds!, id)]));
    }

    /// <summary>rerank_word and its short-passage forms: each question's answer is the set of passages
    /// holding its word, every such passage holds it once, the ids come in random order (not context order),
    /// one to three of them, and the passages have about the words the variant names.</summary>
    [Theory]
    [InlineData("rerank_word", 20)]
    [InlineData("rerank_word_4", 4)]
    [InlineData("rerank_word_10", 10)]
    public void One_word_rerank_answers_exactly_the_passages_that_hold_the_word(string name, int passageWords)
    {
        var task = TaskSuite.Get(name);
        Assert.Contains(task, new[] { Rerank.OneWord, Rerank.OneWordShort, Rerank.OneWordMedium });
        Assert.DoesNotContain(task, TaskSuite.Scored);
        var holders = new int[Rerank.MaxHolders + 1];
        int outOfOrder = 0;
        foreach (int length in new[] { 128, 512 }) // at 1K, 4-word passages would need more ids than there are
            for (int seed = 0; seed < 20; seed++)
            {
                var ex = task.Generate(seed, length, task.TrainingQuestions);
                var c = ex.Context;
                var passages = new List<(int Id, int[] Body)>();
                for (int i = 0; i < c.Length; i++)
                    if (c[i] == V["["]) passages.Add((c[i + 1], c[(i + 3)..Array.IndexOf(c, V[";"], i)]));
                double words = passages.Average(p => p.Body.Length);
                Assert.InRange(words, 0.75 * passageWords, 1.3 * passageWords);
                Assert.Equal(task.TrainingQuestions, ex.Questions.Length);
                foreach (var qa in ex.Questions)
                {
                    int word = qa.Question[1];
                    Assert.Equal([V["query"], word, V["ranking"], V[":"]], qa.Question);
                    Assert.All(passages, p => Assert.True(p.Body.Count(t => t == word) <= 1));
                    var holding = passages.Where(p => p.Body.Contains(word)).Select(p => p.Id).ToList();
                    Assert.Equal(holding.Order(), qa.Answer.Order());
                    Assert.Equal(1.0, task.Score(qa, qa.Answer), 9);
                    Assert.Equal(passages.Count, qa.GradedIds!.Length);
                    holders[qa.Answer.Length]++;
                    if (!holding.SequenceEqual(qa.Answer)) outOfOrder++;
                }
            }
        Assert.Equal(0, holders[0]);
        Assert.All(holders[1..], n => Assert.True(n >= 30, $"holder counts {string.Join("/", holders)}"));
        Assert.True(outOfOrder >= 30, $"only {outOfOrder} answers out of context order");
    }

    /// <summary>Every draw fits: a passage that holds several of the asked words gets room for them. Before,
    /// an even split of the filler left some draws a passage too short for its words, and the generator threw
    /// (a training run died at the first such step). The draws the even split held are unchanged.</summary>
    [Theory]
    [InlineData("rerank_word_4", 128)]
    [InlineData("rerank_word_10", 256)]
    [InlineData("rerank_word", 512)]
    public void One_word_rerank_fits_every_draw(string name, int length)
    {
        var task = TaskSuite.Get(name);
        int crowded = 0;
        for (int seed = 0; seed < 3000; seed++)
        {
            var ex = task.Generate(seed, length, task.TrainingQuestions); // throws if a draw does not fit
            var c = ex.Context;
            var sizes = new List<int>();
            var needs = new List<int>();
            for (int i = 0; i < c.Length; i++)
                if (c[i] == V["["])
                {
                    var body = c[(i + 3)..Array.IndexOf(c, V[";"], i)];
                    int asked = ex.Questions.Count(qa => body.Contains(qa.Question[1]));
                    Assert.True(body.Length >= Math.Max(3, asked), $"seed {seed}: a passage of {body.Length} words holds {asked}");
                    if (asked == task.TrainingQuestions) crowded++;
                    sizes.Add(body.Length);
                    needs.Add(Math.Max(3, asked));
                }
            // Where the even split has room for every passage's words, the passages are the even split.
            int n = sizes.Count, fill = sizes.Sum();
            var even = Enumerable.Range(0, n).Select(i => fill / n + (i < fill % n ? 1 : 0)).ToList();
            if (even.Zip(needs).All(x => x.First >= x.Second)) Assert.Equal(even, sizes);
        }
        if (name == "rerank_word_4") Assert.True(crowded > 0, "no draw put every asked word in one passage: the case is not exercised");
    }

    [Fact]
    public void Table_answer_holds_every_record_in_row_order()
    {
        var ex = TaskSuite.Get("table").Generate(2, 4096, 1);
        var rows = ex.Questions[0].Answer.Chunk(6).ToArray();
        Assert.Equal(TableGen.Rows(4096), rows.Length);
        for (int r = 0; r < rows.Length; r++)
        {
            Assert.Equal(V.Numbers[r + 1], rows[r][0]);
            Assert.Equal(V[Vocabulary.Newline], rows[r][5]);
            Assert.True(ex.Context.AsSpan().IndexOf([V["row"], .. rows[r][..5], V[">"]]) >= 0);
        }
    }

    [Fact]
    public void Icl_labels_are_consistent_within_a_context_and_the_test_indicator_was_demonstrated()
    {
        foreach (var task in new[] { Icl.Few, Icl.Many })
            for (int seed = 0; seed < 5; seed++)
            {
                var ex = task.Generate(seed, 2048, 4);
                var labelOf = new Dictionary<int, int>();
                var c = ex.Context;
                for (int i = 0; i + 4 < c.Length; i++)
                    if (c[i] == V["input"])
                        foreach (int w in c[(i + 1)..(i + 3)])
                            if (labelOf.TryGetValue(w, out int l) && l != c[i + 4]) labelOf[w] = -1; // neutral words vary
                            else labelOf.TryAdd(w, c[i + 4]);
                foreach (var qa in ex.Questions)
                    Assert.Contains(qa.Answer[0], qa.Question[1..3].Select(w => labelOf.GetValueOrDefault(w, -2)));
            }
    }

    [Fact]
    public void Copy_task_targets_are_the_repeated_spans_which_really_repeat_earlier_text()
    {
        var task = TaskSuite.Get("copy");
        for (int seed = 0; seed < 50; seed++) Assert.NotEmpty(task.Generate(seed, 128).ContextLossPositions);
        var ex = task.Generate(8, 2048);
        Assert.Equal(2048, ex.Context.Length);
        Assert.Empty(ex.Questions);
        var (tokens, pos, tgt) = ex.TrainingSequence();
        Assert.True(pos.Length > 100);
        Assert.Equal(ex.Context, tokens);
        for (int i = 0; i < pos.Length; i++)
        {
            Assert.Equal(tokens[pos[i] + 1], tgt[i]);
            // the 2-gram ending at the target occurs earlier in the text: copying is possible
            Assert.True(tokens.AsSpan(0, pos[i]).IndexOf(tokens.AsSpan(pos[i], 2)) >= 0);
        }
    }

    [Fact]
    public void Parse_accepts_tasks_categories_and_all_and_names_unknown_ones()
    {
        Assert.Equal(4, TaskSuite.Parse("recall").Count);
        Assert.Equal(11, TaskSuite.Parse("all").Count);
        Assert.Equal(["json_kv", "rag"], TaskSuite.Parse("json_kv, RAG").Select(t => t.Name));
        var e = Assert.Throws<ArgumentException>(() => TaskSuite.Parse("recal"));
        Assert.Contains("recal", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskSuite.Get("rerank").Generate(1, 64));
    }
}
