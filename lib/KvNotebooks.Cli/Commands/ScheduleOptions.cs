using System.CommandLine;
using KvNotebooks.Eviction;

namespace KvNotebooks.Cli.Commands;

/// <summary>When a score-based method evicts and how much: shared by run, logits and footprint.</summary>
internal sealed class ScheduleOptions
{
    public readonly Option<string?> Schedule = new("--schedule") { Description = "Score-based methods: postfill | naive | patched (default: postfill for a single pre-fill, naive with --chunk)" };
    public readonly Option<double?> Evict = new("--evict") { Description = "Fraction p of each chunk's KVs evicted, in [0, 1) (default 0.5)" };
    public readonly Option<int?> Budget = new("--budget") { Description = "Absolute budget: prompt KVs kept per head (instead of --evict)" };
    public readonly Option<string?> BudgetRule = new("--budget-rule") { Description = "With --evict: accounting (the default: the paper's footprint formula, round((1−p)·c) + window per chunk) | code (the paper's code: int((1−p)·c); rows labelled /code)" };
    public readonly Option<int> ObsWindow = new("--obs-window", "--patch-window") { Description = "Observation window k: scoring queries, always-kept KVs, patch length", DefaultValueFactory = _ => 64 };
    public readonly Option<int> CapacityMultiple = new("--capacity-multiple") { Description = "Post-fill capacity rounded up to a multiple of this (paper code: 64)", DefaultValueFactory = _ => 64 };
    public readonly Option<bool> DecodeEvict = new("--decode-evict") { Description = "Also evict while decoding (re-scoring every KV a head holds)" };
    public readonly Option<int> DecodeBudget = new("--decode-budget") { Description = "With --decode-evict: entries per head (default: each head's size after pre-fill)", DefaultValueFactory = _ => 0 };
    public readonly Option<int> DecodeInterval = new("--decode-interval") { Description = "With --decode-evict: evict once a head holds budget + this many", DefaultValueFactory = _ => 1 };

    public IEnumerable<Option> All => [Schedule, Evict, Budget, BudgetRule, ObsWindow, CapacityMultiple, DecodeEvict, DecodeBudget, DecodeInterval];

    public static bool Given(ParseResult p, Option o) => p.GetResult(o) is { Implicit: false };

    /// <summary>Whether any schedule option was given explicitly.</summary>
    public bool AnyGiven(ParseResult p) => All.Any(o => Given(p, o));

    /// <summary>The fraction evicted (--evict, default 0.5), for formulas that take p.</summary>
    public double EvictFraction(ParseResult p) => p.GetValue(Evict) ?? 0.5;

    public EvictionSchedule Create(ParseResult p, bool chunked)
    {
        string kind = (p.GetValue(Schedule) ?? (chunked ? "naive" : "postfill")).ToLowerInvariant();
        var scheduleKind = kind switch
        {
            "postfill" or "post-fill" => ScheduleKind.PostFill,
            "naive" => ScheduleKind.Naive,
            "patched" => ScheduleKind.Patched,
            _ => throw new ArgumentException($"--schedule must be postfill, naive or patched (got '{kind}')"),
        };
        double? evict = p.GetValue(Evict);
        int? budget = p.GetValue(Budget);
        if (evict is not null && budget is not null) throw new ArgumentException("give either --evict or --budget, not both");
        string rule = (p.GetValue(BudgetRule) ?? "accounting").ToLowerInvariant();
        if (rule is not ("code" or "accounting")) throw new ArgumentException($"--budget-rule must be code or accounting (got '{rule}')");
        if (budget is not null && Given(p, BudgetRule)) throw new ArgumentException("--budget-rule applies to --evict, not to --budget");
        var b = budget is { } tokens ? EvictionBudget.Absolute(tokens)
            : rule == "accounting" ? EvictionBudget.FractionPlusWindow(evict ?? 0.5) : EvictionBudget.Fraction(evict ?? 0.5);
        var schedule = new EvictionSchedule
        {
            Kind = scheduleKind, Budget = b, Window = p.GetValue(ObsWindow), CapacityMultiple = p.GetValue(CapacityMultiple),
            EvictDuringDecode = p.GetValue(DecodeEvict), DecodeBudget = p.GetValue(DecodeBudget), DecodeInterval = p.GetValue(DecodeInterval),
        };
        schedule.Validate();
        return schedule;
    }
}
