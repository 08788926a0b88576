namespace KvNotebooks.Evaluation;

/// <summary>The commit of the working tree results are produced from, read from .git without running git.</summary>
public static class GitInfo
{
    private static string? _commit;

    /// <summary>The 40-hex commit of HEAD in the repository around the current directory (or the library's
    /// location), with "+dirty" unknown (not checked); "unknown" outside a repository.</summary>
    public static string Commit() => _commit ??= Find(Directory.GetCurrentDirectory()) ?? Find(AppContext.BaseDirectory) ?? "unknown";

    private static string? Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            string git = Path.Combine(dir.FullName, ".git");
            if (File.Exists(git)) // a worktree: "gitdir: …"
            {
                string line = File.ReadAllText(git).Trim();
                if (line.StartsWith("gitdir:")) git = Path.GetFullPath(Path.Combine(dir.FullName, line[7..].Trim()));
            }
            if (!Directory.Exists(git)) continue;
            try { return Resolve(git); } catch (IOException) { return null; }
        }
        return null;
    }

    private static string? Resolve(string gitDir)
    {
        string head = File.ReadAllText(Path.Combine(gitDir, "HEAD")).Trim();
        if (!head.StartsWith("ref:")) return head;
        string name = head[4..].Trim();
        // Worktrees keep refs in the common dir.
        string common = File.Exists(Path.Combine(gitDir, "commondir"))
            ? Path.GetFullPath(Path.Combine(gitDir, File.ReadAllText(Path.Combine(gitDir, "commondir")).Trim())) : gitDir;
        foreach (var root in new[] { gitDir, common })
        {
            string loose = Path.Combine(root, name);
            if (File.Exists(loose)) return File.ReadAllText(loose).Trim();
            string packed = Path.Combine(root, "packed-refs");
            if (File.Exists(packed))
                foreach (var line in File.ReadLines(packed))
                    if (line.EndsWith(" " + name)) return line[..line.IndexOf(' ')];
        }
        return null;
    }
}
