using System.CommandLine;
using KvNotebooks.Notebooks;
using KvNotebooks.Validation.Fuzz;

namespace KvNotebooks.Cli.Commands;

/// <summary><c>kvnb fuzz</c>: damaged inputs for every file format the project loads; each must give a typed
/// error naming its file or load correctly, within the time and memory caps. Violations are kept as files.</summary>
public static class FuzzCommand
{
    /// <summary>Every registered format: the library's and the notebooks'.</summary>
    public static IReadOnlyList<FuzzFormat> Formats { get; } = [.. LibraryFuzzFormats.All, .. NotebookFuzzFormats.All];

    public static Command Create()
    {
        var format = new Option<string>("--format") { Description = $"Formats, comma-separated, or all: {string.Join(", ", Formats.Select(f => f.Name))}", DefaultValueFactory = _ => "all" };
        var count = new Option<int>("--count") { Description = "Inputs per format", DefaultValueFactory = _ => 1000 };
        var seed = new Option<int>("--seed") { Description = "First input's seed (input i uses seed + i; a violation is replayed with its seed)", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out") { Description = "Folder for the inputs that broke a rule (FORMAT-SEED.bin and .txt), to keep as regression cases" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds one load may take before it counts as a hang", DefaultValueFactory = _ => 10 };
        var json = Cli.JsonOption();
        var cmd = new Command("fuzz", "Fuzz the loaders: every damaged input must be a typed error naming its file, or a correct load") { format, count, seed, output, timeout, json };
        cmd.SetAction(p => Cli.Run(() =>
        {
            string names = p.GetValue(format)!;
            var chosen = names == "all" ? Formats : names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(n => Formats.FirstOrDefault(f => f.Name == n) ?? throw new ArgumentException($"--format: unknown format '{n}' (formats: {string.Join(", ", Formats.Select(f => f.Name))})"))
                .ToList();
            int n = p.GetValue(count);
            if (n < 1) throw new ArgumentException($"--count must be ≥ 1 (got {n})");
            int t = p.GetValue(timeout);
            if (t < 1) throw new ArgumentException($"--timeout must be ≥ 1 (got {t})");
            string? outDir = p.GetValue(output);
            bool asJson = p.GetValue(json);
            var reports = new List<FuzzReport>();
            foreach (var f in chosen)
            {
                using var runner = new FuzzRunner(f) { Timeout = TimeSpan.FromSeconds(t) };
                var report = runner.Run(n, p.GetValue(seed), v => Keep(v, outDir));
                reports.Add(report);
                if (!asJson)
                {
                    Console.WriteLine($"{f.Name,-13} {report.Inputs,7} inputs  {report.TypedErrors,7} typed errors  {report.CorrectLoads,7} correct loads  " +
                                      $"{report.Violations.Count,4} violations  {report.Elapsed.TotalSeconds,6:F1} s");
                    foreach (var v in report.Violations.Take(5)) Console.WriteLine($"    seed {v.Seed} [{v.Mutators}]: {v.Detail}");
                }
            }
            int total = reports.Sum(r => r.Inputs), bad = reports.Sum(r => r.Violations.Count);
            if (asJson)
                Cli.WriteJson(new
                {
                    inputs = total, violations = bad,
                    formats = reports.Select(r => new { format = r.Format, inputs = r.Inputs, typedErrors = r.TypedErrors, correctLoads = r.CorrectLoads,
                        violations = r.Violations.Select(v => new { seed = v.Seed, mutators = v.Mutators, detail = v.Detail }), seconds = r.Elapsed.TotalSeconds }),
                });
            else Console.WriteLine($"{"total",-13} {total,7} inputs  {reports.Sum(r => r.TypedErrors),7} typed errors  {reports.Sum(r => r.CorrectLoads),7} correct loads  {bad,4} violations");
            return bad == 0 ? 0 : 1;
        }));
        return cmd;
    }

    private static void Keep(FuzzOutcome v, string? dir)
    {
        if (dir is null) return;
        Directory.CreateDirectory(dir);
        string stem = Path.Combine(dir, $"{v.Format}-{v.Seed}");
        if (v.Input?.Bytes is { } bytes) File.WriteAllBytes(stem + ".bin", bytes);
        File.WriteAllText(stem + ".txt", $"{v.Format} seed {v.Seed} [{v.Mutators}]{(v.Input?.AsFolder == true ? " (a folder in place of the file)" : "")}\n{v.Detail}\n");
    }
}
