#!/usr/bin/env python3
"""What changed between two result CSVs (kvnb sweep / eval rows): rows added, removed, and rows whose measured
values differ, keyed like the sweep's resume key (model, method, method_config, context, chunk, task, example set).
Timing and memory columns (throughput, seconds, process peak memory) and the commit are not compared.

    python3 scripts/compare-results.py OLD.csv NEW.csv [--quiet]

Exit code 0 always (a report, not a check); the last line sums it up."""
import csv, sys

KEY = ("model", "method", "method_config", "context", "chunk", "task")
SKIP = {"commit", "prefill_tokens_per_second", "decode_tokens_per_second", "seconds", "peak_rss_bytes"}

def load(path):
    try:
        with open(path, newline="") as f:
            # the example set is part of the key (held-out rows sit beside the fixed sets'); files without it are "fixed"
            return {tuple(r[k] for k in KEY) + (r.get("example_set") or "fixed",): r for r in csv.DictReader(f)}
    except FileNotFoundError:
        return {}

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quiet = "--quiet" in sys.argv
    if len(args) != 2:
        sys.exit(__doc__)
    old, new = load(args[0]), load(args[1])
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = []
    for k in new.keys() & old.keys():
        diffs = [(c, old[k][c], new[k][c]) for c in new[k] if c not in SKIP and c in old[k] and old[k][c] != new[k][c]]
        if diffs:
            changed.append((k, diffs))
    if not quiet:
        for k, diffs in sorted(changed)[:40]:
            print("changed", "|".join(k[1:]), "; ".join(f"{c}: {a} -> {b}" for c, a, b in diffs))
        for k in sorted(added)[:20]:
            print("added  ", "|".join(k[1:]))
        for k in sorted(removed)[:20]:
            print("removed", "|".join(k[1:]))
    same = len(new.keys() & old.keys()) - len(changed)
    print(f"{args[1]}: {same} rows identical, {len(changed)} changed, {len(added)} added, {len(removed)} no longer made "
          f"(against {args[0]})")

main()
