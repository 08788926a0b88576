#!/usr/bin/env bash
# One command for every result: regenerates the result CSVs behind notebooks 02–04 from the shipped model and
# masks, re-runs every notebook, and says what changed against the committed CSVs.
#
#   bash scripts/reproduce.sh [EXAMPLES]   the committed results (EXAMPLES per task; default: each sweep script's own,
#                                          20 for all three, 10 for the 4K head-mask curves); about 5½ h on 2 AVX2 cores
#                                          (the stages' measured times: 2 h 7 min, 2 h 40 min, 25 min, then the notebooks);
#                                          resumable: run it again after a stop
#   bash scripts/reproduce.sh --quick      the same pipeline on a tiny grid (1 example per task, 2 rates or sparsities,
#                                          one task per category) into artifacts/quick/: results, executed notebooks;
#                                          the committed files are not touched; minutes (CI runs it)
#   THREADS=1 …                            leave a core free
#
# Each stage is a resumable sweep script (finished rows are skipped). Progress: the stage and the minutes so far here;
# every sweep prints each finished row with an estimate of its time left. The notebooks read the results folder from
# KVNB_RESULTS_DIR (set here), so --quick runs them on the quick results.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=""; examples=${EXAMPLES:-}
for a in "$@"; do case "$a" in --quick) quick=1 ;; [0-9]*) examples=$a ;; *) echo "usage: bash scripts/reproduce.sh [--quick] [EXAMPLES]" >&2; exit 2 ;; esac; done
if [ -n "$quick" ]; then
  examples=1
  export QUICK=1 RESULTS_DIR=artifacts/quick/results
  rm -rf artifacts/quick && mkdir -p "$RESULTS_DIR"
else
  export RESULTS_DIR=data/results
fi
export NO_NOTEBOOK=1 KVNB_RESULTS_DIR="$PWD/$RESULTS_DIR"
[ -f lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll ] || dotnet build KvNotebooks.sln -c Release -nologo -clp:ErrorsOnly
kvnb() { dotnet lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll "$@"; }

before=$(mktemp -d); trap 'rm -rf "$before"' EXIT
csvs=(sweep-kvnb-small.csv head-masks-kvnb-small.csv hardware-kvnb-small.csv)
for f in "${csvs[@]}"; do git show "HEAD:data/results/$f" > "$before/$f" 2>/dev/null || : ; done

start=$(date +%s)
# notebook 04 reads the CSVs of notebooks 02 and 03, and its own (Tables 7–12: one process per row, for its memory)
stages=("scripts/sweep-02.sh data/models/kvnb-small $examples" "scripts/sweep-03.sh $examples" "scripts/sweep-04.sh $examples")
i=0
for stage in "${stages[@]}"; do
  i=$((i + 1))
  echo "== reproduce: stage $i/${#stages[@]}: $stage   ($(( ($(date +%s) - start) / 60 )) min so far)"
  # shellcheck disable=SC2086
  bash $stage
done

echo "== reproduce: the notebooks ($(( ($(date +%s) - start) / 60 )) min so far)"
if [ -n "$quick" ]; then
  kvnb notebooks run --out-dir artifacts/quick/notebooks --html-dir artifacts/quick/notebooks --no-png
else
  kvnb notebooks run
fi

echo "== reproduce: what changed against the committed results"
for f in "${csvs[@]}"; do
  [ -s "$before/$f" ] && python3 scripts/compare-results.py "$before/$f" "$RESULTS_DIR/$f" --quiet || echo "$f: nothing committed to compare with"
done
echo "== reproduce: done in $(( ($(date +%s) - start) / 60 )) min"
