#!/usr/bin/env bash
# The main job: set up, build, show the engine on a random model and on ours, then run the whole workbook
# headless (executed notebooks with PNG figures, and an HTML report per notebook).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
kvnb() { dotnet lib/KvNotebooks.Cli/bin/Release/net10.0/kvnb.dll "$@"; }

echo "== Analytic footprint: PruLong at 70% head sparsity, 128K prompt in 32K chunks (docs/footprint.md)"
kvnb footprint --method prulong --head-sparsity 0.7 --prompt-tokens 131072 --gen-tokens 100 --chunk 32768

echo "== A random model (data/configs/bench-4l.json), measured footprint of a streaming run"
mkdir -p .tmp
kvnb init --config data/configs/bench-4l.json --seed 1 --out .tmp/random-4l
kvnb run --model .tmp/random-4l --tokens "$(seq -s ' ' 1 500)" --gen-tokens 16 --chunk 128 --method streaming --sink 8 --window 64

echo "== The same prompt, PyramidKV evicting half of each chunk, patched (the prompt's last 16 tokens score each chunk)"
kvnb run --model .tmp/random-4l --tokens "$(seq -s ' ' 1 500)" --gen-tokens 16 --chunk 128 --method pyramidkv --schedule patched --evict 0.5 --obs-window 16

echo "== Our model (data/models/kvnb-small), JSON key-value retrieval at 4K tokens in 1K chunks, PyramidKV evicting 90 % of each chunk: naive, then patched"
kvnb eval --model data/models/kvnb-small --tasks json_kv --context 4096 --examples 10 --chunk 1024 --method pyramidkv --schedule naive --evict 0.9
kvnb eval --model data/models/kvnb-small --tasks json_kv --context 4096 --examples 10 --chunk 1024 --method pyramidkv --schedule patched --evict 0.9

echo "== The workbook"
kvnb notebooks run
