using System.Text.RegularExpressions;

namespace KvNotebooks.Notebooks;

/// <summary>
/// Removes this machine's absolute paths from outputs before they are committed: a path under the
/// repository root (or the notebook's folder) becomes relative to it, any other absolute path (temp
/// folders, NuGet cache, SDK) is cut to <c>…/file-name</c>.
/// </summary>
public sealed partial class PathScrubber
{
    private readonly string[] _roots;

    /// <param name="roots">Folders whose contents are shown relative to them, most specific last is fine
    /// (the first root that contains a path wins, so pass the repository root first).</param>
    public PathScrubber(params string?[] roots) =>
        _roots = roots.Where(r => !string.IsNullOrEmpty(r))
            .Select(r => Path.TrimEndingDirectorySeparator(Path.GetFullPath(r!)))
            .Distinct().ToArray();

    // An absolute path of at least two segments, not part of a URL or a relative path.
    [GeneratedRegex(@"(?<![\w.:/~\-])/(?:[^\s/:""'<>()\[\],;|*?]+/)+[^\s/:""'<>()\[\],;|*?]*")]
    private static partial Regex AbsolutePath();

    public string Scrub(string text)
    {
        if (text.IndexOf('/') < 0) return text;
        return AbsolutePath().Replace(text, m => Relativise(m.Value));
    }

    private string Relativise(string path)
    {
        foreach (var root in _roots)
        {
            if (path == root) return ".";
            if (path.StartsWith(root + "/", StringComparison.Ordinal)) return path[(root.Length + 1)..];
        }
        string trimmed = path.TrimEnd('/');
        string name = trimmed[(trimmed.LastIndexOf('/') + 1)..];
        return name.Length == 0 ? path : "…/" + name;
    }
}
