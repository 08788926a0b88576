#!/usr/bin/env bash
# The sweeps behind notebook 03 (learned head masks) for the shipped model and its shipped masks, then the notebook.
# Resumable: run it again after an interruption and only the missing rows run (the CSV is rewritten after every row).
#
#   bash scripts/sweep-03.sh [EXAMPLES]          default: 20 examples per task
#   THREADS=1 …                                   leave a core free
#   RESULTS_DIR=DIR  the CSV's folder (default data/results); NO_NOTEBOOK=1 skip the notebook;
#   QUICK=1          a tiny grid (2 sparsities, 2K only, one task per category) to check the pipeline
#   MAIN_ONLY=1      the main setting (2K, chunks of 512) and the ablations, without the 4K curves
#   KVNB_DLL=PATH    the kvnb.dll to run (default: this checkout's Release build)
# A run whose masks are not shipped (an ablation not trained yet) is skipped with a message naming the config to train.
#
# Rows go to data/results/head-masks-kvnb-small.csv (notebook 02 keeps sweep-kvnb-small.csv), one curve per --curve name:
#   duo              DuoAttention (gates trained on passkeys) at head sparsity 0.1, 0.3, … 0.9
#   prulong          PruLong trained at each target t, evaluated at t (t = 0.3, 0.5, 0.7, 0.9: the paper's protocol)
#   prulong@0.7      the masks trained at 0.7, at sparsity 0.1, 0.3, … 0.9
#   locret           Locret's retaining heads, eviction 0.1 … 0.9
#   table3/…         the training-data ablation at 70 % streaming heads, chunks of 1/16 of the prompt
#   fig5/…           masks trained at each t, evaluated at 70 %
#   window/W=…       the masks trained at 0.7 at 70 %, with the streaming heads' window W from 4 to 128
#   and a masks-and-weights model (data/models/kvnb-small/masks/prulong-weights-t0.7/model) at several chunk sizes.
# Streaming heads keep sink S and window W of data/configs/masks/streaming.json at 2K and 4K alike.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-20}
threads=${THREADS:-$(nproc)}
masks=data/models/kvnb-small/masks
csv=${RESULTS_DIR:-data/results}/head-masks-kvnb-small.csv
mkdir -p "$(dirname "$csv")"
dll=${KVNB_DLL:-lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll}
[ -f "$dll" ] || dotnet build KvNotebooks.sln -c Release -nologo -clp:ErrorsOnly
kvnb() { dotnet "$dll" "$@"; }
have() { [ -e "$1" ] || { echo "   skipped: $1 is missing (train it: kvnb masks train --config data/configs/masks/$2.json --out $masks/$2)"; return 1; }; }
read -r sink window < <(python3 -c "
import json, re
text = open('data/configs/masks/streaming.json').read()
c = json.loads(re.sub(r'^\s*//.*$', '', text, flags=re.M))
print(c['sink'], c['window'])")
tasks=json_kv,niah_mk,rag,rerank,icl_few,var_track,freq,table; sparsities=0.1:0.9:0.2; rates=0.1:0.9:0.2
[ -n "${QUICK:-}" ] && { tasks=niah_mk,rag,icl_few,var_track; sparsities=0.3,0.7; rates=0.5,0.9; }
# The ablations (Table 3, Fig. 5) use the categories the paper's Table 3 shows that our suite has: Recall, RAG, Re-rank, ICL.
ablation_tasks=json_kv,niah_mk,rag,rerank,icl_few
[ -n "${QUICK:-}" ] && ablation_tasks=niah_mk,rag,icl_few
base=(--model data/models/kvnb-small --model-name kvnb-small --examples "$examples" --threads "$threads" --csv "$csv")
common=("${base[@]}" --tasks "$tasks")
ablation=("${base[@]}" --tasks "$ablation_tasks")
heads=(--sink "$sink" --window "$window")
# The main setting (2K tokens, chunks of a quarter) and 4K with chunks of a quarter.
settings=("2048 512" "4096 1024")
[ -n "${QUICK:-}${MAIN_ONLY:-}" ] && settings=("2048 512")

for s in "${settings[@]}"; do
  read -r ctx chunk <<<"$s"
  echo "== ${ctx} tokens, chunks of ${chunk}: full attention, DuoAttention, PruLong, Locret"
  kvnb sweep "${common[@]}" --methods full --chunks "$chunk" --contexts "$ctx"
  kvnb sweep "${common[@]}" --methods duo --curve duo --masks "$masks/duo-passkeys/masks.tsv" "${heads[@]}" \
    --head-sparsity "$sparsities" --chunks "$chunk" --contexts "$ctx"
  for t in 0.3 0.5 0.7 0.9; do
    kvnb sweep "${common[@]}" --methods prulong --curve prulong --masks "$masks/prulong-t$t/masks.tsv" "${heads[@]}" \
      --head-sparsity "$t" --chunks "$chunk" --contexts "$ctx"
  done
  kvnb sweep "${common[@]}" --methods prulong --curve prulong@0.7 --masks "$masks/prulong-t0.7/masks.tsv" "${heads[@]}" \
    --head-sparsity "$sparsities" --chunks "$chunk" --contexts "$ctx"
  # Locret at our scale: the code's 2,500 stabilizers and 100-token tail at 128K are 2 % and 0.08 % of the prompt.
  have "$masks/locret/retaining_heads.safetensors" locret && kvnb sweep "${common[@]}" --methods locret --curve locret --heads "$masks/locret/retaining_heads.safetensors" \
    --stabilizers $((ctx / 52)) --local-len 2 --evict "$rates" --budget-rule accounting --chunks "$chunk" --contexts "$ctx"
done

echo "== Table 3 analog: 70 % streaming heads, 2K tokens in chunks of 128 (1/16 of the prompt)"
kvnb sweep "${ablation[@]}" --methods full --chunks 128 --contexts 2048
for run in duo-passkeys duo-mix duo-mix-4x; do
  have "$masks/$run/masks.tsv" "$run" || continue
  kvnb sweep "${ablation[@]}" --methods duo --curve "table3/$run" --masks "$masks/$run/masks.tsv" "${heads[@]}" \
    --head-sparsity 0.7 --chunks 128 --contexts 2048
done
for run in prulong-t0.7 prulong-passkeys prulong-synthesis; do
  have "$masks/$run/masks.tsv" "$run" || continue
  kvnb sweep "${ablation[@]}" --methods prulong --curve "table3/$run" --masks "$masks/$run/masks.tsv" "${heads[@]}" \
    --head-sparsity 0.7 --chunks 128 --contexts 2048
done

echo "== Fig. 5 analog: PruLong masks trained at t, evaluated at 70 % (2K, chunks of 512)"
for t in 0.3 0.5 0.7 0.9; do
  kvnb sweep "${ablation[@]}" --methods prulong --curve "fig5/prulong-t$t" --masks "$masks/prulong-t$t/masks.tsv" "${heads[@]}" \
    --head-sparsity 0.7 --chunks 512 --contexts 2048
done

echo "== Window sweep: PruLong (masks trained at 0.7) at 70 % streaming heads, window W = 4 … 128 (2K, chunks of 512)"
for w in 4 8 32 64 128; do
  kvnb sweep "${ablation[@]}" --methods prulong --curve "window/W=$w" --masks "$masks/prulong-t0.7/masks.tsv" --sink "$sink" --window "$w" \
    --head-sparsity 0.7 --chunks 512 --contexts 2048
done

echo "== Fig. 6 analog: masks and weights trained together at 0.7, at several chunk sizes (2K)"
weights="$masks/prulong-weights-t0.7"
have "$weights/masks.tsv" prulong-weights-t0.7 &&
for chunk in 128 512 none; do
  kvnb sweep --model "$weights/model" --model-name kvnb-small-prulong-weights --examples "$examples" --threads "$threads" --csv "$csv" --tasks "$tasks" \
    --methods full --chunks "$chunk" --contexts 2048
  kvnb sweep --model "$weights/model" --model-name kvnb-small-prulong-weights --examples "$examples" --threads "$threads" --csv "$csv" --tasks "$tasks" \
    --methods prulong --curve prulong --masks "$weights/masks.tsv" "${heads[@]}" --head-sparsity 0.7 --chunks "$chunk" --contexts 2048
done

[ -n "${NO_NOTEBOOK:-}" ] && exit 0
kvnb notebooks run notebooks/03-head-masks.ipynb
