using KvNotebooks.Tasks;

namespace KvNotebooks.Training.Pretraining;

/// <summary>Result of a teacher-forced evaluation: the share of examples whose every answer token is the
/// model's argmax (what greedy decoding would produce exactly), and the share of answer tokens right.</summary>
public sealed record TeacherForcedResult(string Task, int Length, int Examples, double Exact, double TokenAccuracy);

/// <summary>Cheap accuracy during training: one forward pass per example, no decoding.</summary>
public static class TeacherForced
{
    public static TeacherForcedResult Evaluate(TrainableLlama model, LongContextTask task, int length, int examples, int seedBase)
    {
        int exact = 0, right = 0, total = 0, V = model.Config.VocabSize;
        for (int i = 0; i < examples; i++)
        {
            var ex = task.Generate(seedBase + i, length, 1);
            var (tokens, pos, tgt) = ex.TrainingSequence();
            model.Forward(tokens, pos, tgt);
            var logits = model.Logits;
            bool all = true;
            for (int p = 0; p < pos.Length; p++)
            {
                var row = logits.Slice(p * V, V);
                int arg = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);
                if (arg == tgt[p]) right++; else all = false;
                total++;
            }
            if (all) exact++;
        }
        return new TeacherForcedResult(task.Name, length, examples, (double)exact / examples, total == 0 ? 0 : (double)right / total);
    }
}
