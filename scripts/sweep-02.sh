#!/usr/bin/env bash
# The sweeps behind notebook 02 for one model, then the notebook itself. Resumable: run it again after
# an interruption and only the missing rows run (the CSV is rewritten after every finished row).
#
#   bash scripts/sweep-02.sh [MODEL_DIR] [EXAMPLES]         default: data/models/kvnb-small 20
#   MODEL_NAME=kvnb-small bash scripts/sweep-02.sh /path/to/export   # name the rows when the folder name is not the model's
#   THREADS=1 …                                            # leave a core free
#   RESULTS_DIR=DIR  the CSV's folder (default data/results); NO_NOTEBOOK=1 skip the notebook;
#   KVNB_DLL=PATH    the kvnb.dll to run (default: this checkout's Release build)
#   QUICK=1          a tiny grid (2 rates, one task per category) to check the pipeline (scripts/reproduce.sh --quick)
#
# Rows go to data/results/sweep-NAME.csv (+ .config.json: every invocation, model hash, commit);
# notebook 02 reads data/results/sweep-kvnb-small.csv. About 2 h on 2 cores with the defaults (data/results/README.md
# gives the measured times).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-data/models/kvnb-small}
examples=${2:-20}
name=${MODEL_NAME:-$(basename "$(cd "$model" && pwd)")}
threads=${THREADS:-$(nproc)}
csv=${RESULTS_DIR:-data/results}/sweep-$name.csv
mkdir -p "$(dirname "$csv")"
rates=0.1:0.9:0.2; tasks=json_kv,niah_mk,rag,rerank,icl_few,var_track,freq,table; recall=json_kv,niah_mk
[ -n "${QUICK:-}" ] && { rates=0.5,0.9; tasks=niah_mk,rag,icl_few,var_track; recall=niah_mk; }
dll=${KVNB_DLL:-lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll}
[ -f "$dll" ] || dotnet build KvNotebooks.sln -c Release -nologo -clp:ErrorsOnly
kvnb() { dotnet "$dll" "$@"; }
common=(--model "$model" --model-name "$name" --examples "$examples" --threads "$threads" --csv "$csv" --evict "$rates")

echo "== every method at 5 eviction rates, 2K context, 512-token chunks, one or two tasks per category"
kvnb sweep "${common[@]}" \
  --methods full,pyramidkv:postfill,pyramidkv:naive,pyramidkv:patched,snapkv:patched,h2o:naive,l2:naive,zigzag:patched,quantized \
  --bits 2,4,8 --skip-layers 0 --chunks 512 --contexts 2048 \
  --tasks "$tasks"
echo "== chunk size on Recall (512 is already done and skipped)"
kvnb sweep "${common[@]}" --methods full,pyramidkv:naive,pyramidkv:patched --chunks 256,512,1024 --contexts 2048 --tasks "$recall"
echo "== the GQA layout of the original code (one KV copy per query head) on Recall"
kvnb sweep "${common[@]}" --methods snapkv:patched --gqa replicated --chunks 512 --contexts 2048 --tasks "$recall"
echo "== Recall at 4K, 1K chunks"
kvnb sweep "${common[@]}" --methods full,pyramidkv:naive,pyramidkv:patched --chunks 1024 --contexts 4096 --tasks "$recall"
echo "== held-out examples (seed base 91,000,000): Recall at 2K, PyramidKV naive vs patched"
kvnb sweep "${common[@]}" --held-out --methods full,pyramidkv:naive,pyramidkv:patched --chunks 512 --contexts 2048 --tasks "$recall"

[ -n "${NO_NOTEBOOK:-}" ] && exit 0
echo "== notebook 02"
kvnb notebooks run notebooks/02-post-fill-vs-chunked.ipynb
