#!/usr/bin/env bash
# The rows behind notebook 04's Tables 7–12 analog: each of the paper's appendix configurations at its setting
# (DuoAttention and PruLong at 70 % streaming heads; PyramidKV and SnapKV keeping 30 % of the KVs, with and without
# +P, patching, and +C, one kept set per KV head), 2K tokens in chunks of 512, with full attention beside them.
# Each row runs in a process of its own, so that its throughput and its process peak memory (peak_rss_bytes: weights,
# activations, KV cache and runtime) are its own; run it on a quiet machine: the throughputs are wall-clock.
# Resumable: finished rows are skipped.
#
#   bash scripts/sweep-04.sh [EXAMPLES]    default: 20 examples per task
#   THREADS=1 …  RESULTS_DIR=DIR (default data/results)  QUICK=1 (one task per category, for CI)  KVNB_DLL=PATH
#   NO_NOTEBOOK=1 skip the notebook
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-20}
threads=${THREADS:-$(nproc)}
masks=data/models/kvnb-small/masks
csv=${RESULTS_DIR:-data/results}/hardware-kvnb-small.csv
mkdir -p "$(dirname "$csv")"
dll=${KVNB_DLL:-lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll}
[ -f "$dll" ] || dotnet build KvNotebooks.sln -c Release -nologo -clp:ErrorsOnly
kvnb() { dotnet "$dll" "$@"; }
read -r sink window < <(python3 -c "
import json, re
text = open('data/configs/masks/streaming.json').read()
c = json.loads(re.sub(r'^\s*//.*$', '', text, flags=re.M))
print(c['sink'], c['window'])")
# the paper's six appendix categories that our suite has: Recall, RAG, Re-rank, ICL and LongGen (its HTML)
tasks=(json_kv niah_mk rag rerank icl_few table)
[ -n "${QUICK:-}" ] && tasks=(niah_mk rag)
base=(--model data/models/kvnb-small --model-name kvnb-small --examples "$examples" --threads "$threads" --csv "$csv" --chunks 512 --contexts 2048)
heads=(--sink "$sink" --window "$window" --head-sparsity 0.7)
configs=(
  "--methods full"
  "--methods duo --curve duo --masks $masks/duo-passkeys/masks.tsv"
  "--methods prulong --curve prulong@0.7 --masks $masks/prulong-t0.7/masks.tsv"
  "--methods pyramidkv:naive --gqa replicated --evict 0.7"
  "--methods pyramidkv:naive --evict 0.7"
  "--methods pyramidkv:patched --gqa replicated --evict 0.7"
  "--methods pyramidkv:patched --evict 0.7"
  "--methods snapkv:naive --gqa replicated --evict 0.7"
  "--methods snapkv:naive --evict 0.7"
  "--methods snapkv:patched --gqa replicated --evict 0.7"
  "--methods snapkv:patched --evict 0.7"
)
n=$(( ${#configs[@]} * ${#tasks[@]} )); i=0; start=$(date +%s)
echo "== Tables 7–12 analog: ${#configs[@]} configurations × ${#tasks[@]} tasks, one process per row, into $csv"
for config in "${configs[@]}"; do
  extra=(); case "$config" in *duo*|*prulong*) extra=("${heads[@]}") ;; esac
  for task in "${tasks[@]}"; do
    i=$((i + 1))
    echo "-- row $i/$n ($(( ($(date +%s) - start) / 60 )) min so far): $config, $task"
    # shellcheck disable=SC2086
    kvnb sweep "${base[@]}" $config "${extra[@]}" --tasks "$task"
  done
done

[ -n "${NO_NOTEBOOK:-}" ] && exit 0
kvnb notebooks run notebooks/04-result-tables.ipynb
