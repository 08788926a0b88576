#!/usr/bin/env bash
# Ship a training run as data/models/kvnb-small, score it at full attention, re-run notebook 00.
#
#   bash scripts/ship-model.sh RUN_DIR [EXAMPLES]     e.g. runs/kvnb-small 20
#
# 1. a snapshot of RUN_DIR (a training process may still be writing it) is shipped with
#    `kvnb train --max-steps 0 --ship`: config.json, model.safetensors, tokenizer.json, train_config.json,
#    loss.csv, eval.csv;
# 2. `kvnb eval` at 1,024, 2,048 and 4,096 tokens (the fixed sets in data/eval) at full attention
#    → data/results/kvnb-small-full.csv (rows for the same context are replaced);
# 3. notebook 00 is executed (its figures read the model and that CSV).
# About 10 minutes on 2 cores with 20 examples.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: bash scripts/ship-model.sh RUN_DIR [EXAMPLES]}
examples=${2:-20}
out=data/models/kvnb-small
[ -f "$run/checkpoint.bin" ] || { echo "ship-model: $run holds no checkpoint.bin (not a kvnb train run folder)" >&2; exit 2; }
[ -f lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll ] || dotnet build KvNotebooks.sln -c Release -nologo -clp:ErrorsOnly
kvnb() { dotnet lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll "$@"; }
snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
cp "$run"/{checkpoint.bin,train_config.json,loss.csv,eval.csv} "$snap"/
kvnb train --config "$snap/train_config.json" --out "$snap" --max-steps 0 --ship "$out"
for n in 1024 2048 4096; do
  echo "== full attention at $n tokens"
  kvnb eval --model "$out" --context "$n" --examples "$examples" --csv data/results/kvnb-small-full.csv
done
kvnb notebooks run notebooks/00-our-model.ipynb
