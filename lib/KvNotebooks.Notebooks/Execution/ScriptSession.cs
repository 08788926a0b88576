using System.Collections.Immutable;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.DotNet.Interactive.Formatting;

namespace KvNotebooks.Notebooks.Execution;

/// <summary>
/// One notebook's C# session on Roslyn scripting (notebooks.md §2): a shared <see cref="ScriptState"/>
/// that every cell continues, <c>#r</c>/<c>#load</c> resolved against the notebook's folder, the kernel's
/// default imports and the <c>PocketViewTags</c> prelude.
/// </summary>
internal sealed partial class ScriptSession
{
    /// <summary>The kernel's default imports (plus Formatting, whose static PocketViewTags the prelude opens).</summary>
    public static readonly string[] DefaultImports =
    [
        "System", "System.Text", "System.Collections", "System.Collections.Generic", "System.Threading.Tasks",
        "System.Linq", "Microsoft.DotNet.Interactive.Formatting",
    ];

    public const string Prelude = "using static Microsoft.DotNet.Interactive.Formatting.PocketViewTags;";

    private readonly ScriptOptions _options;
    private readonly NotebookGlobals _globals;
    private readonly CellSink _sink;
    private readonly PathScrubber _scrubber;
    private ScriptState<object>? _state;

    public ScriptSession(string notebookDir, CellSink sink, PathScrubber scrubber)
    {
        _sink = sink;
        _scrubber = scrubber;
        _globals = new NotebookGlobals(sink);
        // No FilePath: diagnostics then carry "(line,col)" relative to the cell, not a machine path.
        _options = ScriptOptions.Default
            .WithLanguageVersion(LanguageVersion.Latest)
            .WithMetadataResolver(ScriptMetadataResolver.Default.WithBaseDirectory(notebookDir))
            .WithSourceResolver(new SourceFileResolver(ImmutableArray<string>.Empty, notebookDir))
            .AddReferences(
                typeof(NotebookGlobals).Assembly, typeof(Formatter).Assembly,
                typeof(JsonNode).Assembly, typeof(Regex).Assembly, typeof(System.Diagnostics.Stopwatch).Assembly,
                typeof(System.Collections.Concurrent.ConcurrentDictionary<,>).Assembly, typeof(File).Assembly)
            .AddImports(DefaultImports);
    }

    /// <summary>Compiles and runs the prelude (also the warm-up of the compiler).</summary>
    public async Task StartAsync()
    {
        _state = await CSharpScript.RunAsync(Prelude, _options, _globals, typeof(NotebookGlobals));
    }

    [GeneratedRegex(@"^\s*#r\s+""nuget:", RegexOptions.Multiline | RegexOptions.IgnoreCase)]
    private static partial Regex NugetReference();
    [GeneratedRegex(@"^\s*#i\s+""", RegexOptions.Multiline)]
    private static partial Regex PackageSource();
    [GeneratedRegex(@"^\s*(#![^\s]*)", RegexOptions.Multiline)]
    private static partial Regex MagicLine();

    /// <summary>
    /// Runs one cell. Outputs go to the sink; returns the error output when the cell failed (the
    /// notebook must then stop), null when it succeeded.
    /// </summary>
    public async Task<JsonObject?> RunCellAsync(string code, int executionCount)
    {
        if (_state is null) throw new InvalidOperationException("StartAsync first");

        if (Unsupported(code) is { } why)
            return Fail(Outputs.Error("UnsupportedInHeadlessRunner", why, [why]));

        Script<object> script = _state.Script.ContinueWith(code, _options);
        var errors = script.Compile().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            var lines = errors.Select(d => _scrubber.Scrub(d.ToString())).ToList();
            return Fail(Outputs.Error("CompilationError", lines[0], lines));
        }

        bool hasValue = HasReturnValue(script.GetCompilation());
        ScriptState<object> next;
        try
        {
            next = await script.RunFromAsync(_state, _ => true);
        }
        catch (Exception e)
        {
            return Fail(RuntimeError(e));
        }
        _state = next;
        if (next.Exception is { } ex) return Fail(RuntimeError(ex));
        if (hasValue) _sink.Result(next.ReturnValue, executionCount);
        return null;
    }

    private JsonObject Fail(JsonObject error)
    {
        _sink.Error(error);
        return error;
    }

    private static string? Unsupported(string code)
    {
        if (NugetReference().IsMatch(code))
            return "#r \"nuget:…\" is not supported by the headless runner (no kernel, no package download): reference a built DLL with #r \"relative/path.dll\"";
        if (PackageSource().IsMatch(code))
            return "#i (package source) is not supported by the headless runner: reference a built DLL with #r \"relative/path.dll\"";
        if (MagicLine().Match(code) is { Success: true } m)
            return $"magic command '{m.Groups[1].Value}' is not supported by the headless runner: only plain C# cells run";
        return null;
    }

    /// <summary>
    /// Whether the submission ends in an expression without ';' whose type is not void — the public-API
    /// stand-in for Roslyn's internal HasSubmissionResult (notebooks.md §2).
    /// </summary>
    internal static bool HasReturnValue(Compilation compilation)
    {
        var tree = compilation.SyntaxTrees.LastOrDefault();
        if (tree?.GetRoot() is not CompilationUnitSyntax root) return false;
        if (root.Members.LastOrDefault() is not GlobalStatementSyntax { Statement: ExpressionStatementSyntax statement }
            || !statement.SemicolonToken.IsMissing)
            return false;
        var type = compilation.GetSemanticModel(tree).GetTypeInfo(statement.Expression).Type;
        return type is not null && type.SpecialType != SpecialType.System_Void;
    }

    /// <summary>An <c>error</c> output for an exception: the script's own frames, no runner internals,
    /// machine paths removed, at most 20 lines.</summary>
    private JsonObject RuntimeError(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null)
            e = e.InnerException!;
        string name = e.GetType().Name;
        string message = _scrubber.Scrub(e.Message);
        var lines = e.ToString().Split('\n').Select(l => l.TrimEnd('\r'))
            .Where(l => !l.StartsWith("   at Microsoft.CodeAnalysis.Scripting", StringComparison.Ordinal)
                     && !l.StartsWith("   at System.Runtime.CompilerServices.", StringComparison.Ordinal)
                     && !l.StartsWith("   at System.Threading.", StringComparison.Ordinal)
                     && !l.StartsWith("--- End of stack trace from previous location", StringComparison.Ordinal))
            .Select(_scrubber.Scrub)
            .ToList();
        if (lines.Count > 20) lines = [.. lines.Take(20), $"   … {lines.Count - 20} more lines"];
        return Outputs.Error(name, message, lines);
    }
}
