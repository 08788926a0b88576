using KvNotebooks.Notebooks;

namespace KvNotebooks.Tests;

/// <summary>Where the repository is, for tests that read what it ships (data/, notebooks, reference scripts).</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = RepoLocator.FindRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException("KvNotebooks.sln not found above the test assembly " + AppContext.BaseDirectory);
}
