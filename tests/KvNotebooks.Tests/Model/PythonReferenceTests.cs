using System.Diagnostics;
using System.Text.Json;
using KvNotebooks.Eviction;
using KvNotebooks.Inference;
using KvNotebooks.Model;

namespace KvNotebooks.Tests.Model;

/// <summary>
/// Compares the C# engine against an independent pure-Python reference (tests/reference/llama_ref.py,
/// written from transformers' LlamaForCausalLM semantics) on tiny random Hugging Face-layout checkpoints
/// written by Python's own encoder (tests/reference/write_checkpoint.py). Requires python3 on PATH;
/// a missing python3 is a failure, never a skip.
/// Criterion: max |C# − Python| ≤ 1e-4 × max |logit|.
/// </summary>
public class PythonReferenceTests
{
    private const int Vocab = 50;
    private static readonly int[] Tokens = [3, 17, 42, 0, 9, 49, 25, 8, 31, 12, 5, 44];

    private static string RepoRoot() => TestPaths.RepoRoot;

    private static string Script(string name) => Path.Combine(RepoRoot(), "tests", "reference", name);

    private static string RunPython(params string[] args)
    {
        var psi = new ProcessStartInfo("python3")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Assert.Fail("python3 is required for the Python reference tests but could not be started: " + e.Message);
            throw; // unreachable
        }
        using (p)
        {
            var stdoutTask = p.StandardOutput.ReadToEndAsync();
            var stderrTask = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(120_000))
            {
                p.Kill(entireProcessTree: true);
                Assert.Fail("python3 " + string.Join(' ', args) + " timed out");
            }
            string stdout = stdoutTask.Result, stderr = stderrTask.Result;
            Assert.True(p.ExitCode == 0,
                $"python3 {string.Join(' ', args)} exited with {p.ExitCode}:\n{stderr}");
            return stdout;
        }
    }

    private static string NewTempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "kvnb-pyref-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    private static void WriteCheckpoint(string dir, int seed, string[] options) =>
        RunPython([Script("write_checkpoint.py"), dir, "--seed", seed.ToString(), .. options]);

    private static double[][] PythonLogits(string dir, int[] tokens)
    {
        var json = RunPython(Script("llama_ref.py"), dir, "--tokens", string.Join(',', tokens));
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("logits").EnumerateArray()
            .Select(row => row.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
    }

    /// <summary>Asserts the criterion and returns the measured max abs difference.</summary>
    private static double AssertMatches(double[][] expected, ReadOnlySpan<float> actual, int n, string label)
    {
        Assert.Equal(n, expected.Length);
        Assert.Equal(n * Vocab, actual.Length);
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(Vocab, expected[i].Length);
            for (int v = 0; v < Vocab; v++)
            {
                double e = expected[i][v], a = actual[i * Vocab + v];
                Assert.True(double.IsFinite(a), $"{label}: C# logit [{i},{v}] is not finite ({a})");
                maxAbs = Math.Max(maxAbs, Math.Abs(e));
                maxDiff = Math.Max(maxDiff, Math.Abs(e - a));
            }
        }
        double tol = 1e-4 * maxAbs;
        Assert.True(maxDiff <= tol,
            $"{label}: max |C# − Python| = {maxDiff:E3} exceeds 1e-4 × max|logit| = {tol:E3} (max|logit| = {maxAbs:F4})");
        Console.WriteLine($"{label}: max |C# − Python| = {maxDiff:E3} (tolerance {tol:E3})");
        return maxDiff;
    }

    public static TheoryData<string, int, string[]> Cases => new()
    {
        { "F32 untied", 11, ["--dtype", "F32"] },
        { "BF16 tied", 12, ["--dtype", "BF16", "--tie"] },
        { "F16 qwen2 bias", 13, ["--dtype", "F16", "--model-type", "qwen2", "--bias"] },
        { "llama3 scaling, 1 KV head", 14, ["--llama3-scaling", "--kv-heads", "1"] },
        { "3 shards", 15, ["--shards", "3"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void PrefillLogitsMatchPythonReference(string label, int seed, string[] options)
    {
        var dir = NewTempDir();
        try
        {
            WriteCheckpoint(dir, seed, options);
            var expected = PythonLogits(dir, Tokens);

            var weights = LlamaWeights.Load(dir);
            var model = new LlamaModel(weights);
            var s = new Session(model, new FullAttention(), chunking: 5);
            int n = Tokens.Length;
            var logits = new float[n * Vocab];
            s.Prefill(Tokens, logits);

            AssertMatches(expected, logits, n, label);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CliLogitsCommandMatchesPythonReference()
    {
        var dir = NewTempDir();
        try
        {
            WriteCheckpoint(dir, 21, ["--dtype", "F32"]);
            int[] tokens = [1, 2, 3, 4];
            var expected = PythonLogits(dir, tokens);
            var file = Path.Combine(dir, "logits.safetensors");

            int rc = KvNotebooks.Cli.Program.Main(["logits", "--model", dir, "--tokens", "1 2 3 4", "--out", file]);
            Assert.Equal(0, rc);
            Assert.True(File.Exists(file), "kvnb logits did not write " + file);

            var st = SafetensorsFile.Open(file);
            Assert.Equal(new[] { tokens.Length, Vocab }, st.Tensors["logits"].Shape);
            float[] actual = st.ReadFloat32("logits");
            AssertMatches(expected, actual, tokens.Length, "CLI logits");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void LoaderReadsExactlyThePythonWrittenValues()
    {
        var dir = NewTempDir();
        try
        {
            WriteCheckpoint(dir, 31, ["--dtype", "F32"]);
            var json = RunPython(Script("llama_ref.py"), dir, "--dump", "model.norm.weight");
            var expected = JsonSerializer.Deserialize<double[]>(json)!;
            var weights = LlamaWeights.Load(dir);
            Assert.Equal(expected.Length, weights.FinalNorm.Length);
            for (int i = 0; i < expected.Length; i++)
                Assert.True((float)expected[i] == weights.FinalNorm[i],
                    $"model.norm.weight[{i}]: Python {expected[i]:R}, C# {weights.FinalNorm[i]:R}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
