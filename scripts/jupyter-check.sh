#!/usr/bin/env bash
# Fidelity check against the official kernel: executes every notebooks/*.ipynb (name order, as kvnb
# notebooks run does by default) with the dotnet-interactive tool (pinned in .config/dotnet-tools.json) as a
# Jupyter kernel under Debian's jupyter-nbconvert, writing the executed copies to artifacts/jupyter/, then
# compares each with the same notebook as `kvnb notebooks run` left it (scripts/compare-notebooks.py says
# what is compared).
# Run `kvnb notebooks run` first (CI does). Needs scripts/setup-notebooks.sh (jupyter-nbconvert,
# python3-nbclient, `dotnet tool restore`). Usage: bash scripts/jupyter-check.sh [notebooks/x.ipynb ...]
# Env: KVNB_CELL_TIMEOUT (seconds per cell, default 1200, as kvnb notebooks run).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# The kernelspec lives in the repository (scripts/jupyter/kernels/.net-csharp), found through JUPYTER_PATH,
# so nothing is registered in the user's Jupyter. Its argv runs the tool from the local manifest; Jupyter
# starts it in the notebook's folder, inside the repository. --http-local-only: the kernel's HTTP API
# listens on loopback only.
export JUPYTER_PATH="$root/scripts/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_INTERACTIVE_CLI_TELEMETRY_OPTOUT=1
timeout_s="${KVNB_CELL_TIMEOUT:-1200}"

if [ "$#" -gt 0 ]; then notebooks=("$@"); else mapfile -t notebooks < <(ls notebooks/*.ipynb | LC_ALL=C sort); fi
[ "${#notebooks[@]}" -gt 0 ] || { echo "jupyter-check: no notebooks/*.ipynb" >&2; exit 2; }
command -v jupyter-nbconvert >/dev/null || { echo "jupyter-check: jupyter-nbconvert missing: run scripts/setup-notebooks.sh" >&2; exit 2; }
dotnet tool run dotnet-interactive --version >/dev/null || { echo "jupyter-check: the dotnet-interactive tool is not restored: run dotnet tool restore" >&2; exit 2; }

out="artifacts/jupyter"
mkdir -p "$out"
pairs=()
status=0
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb")"
  start=$(date +%s%N)
  # --allow-errors: a failing cell is recorded in the copy, and the comparison names it.
  if ! jupyter-nbconvert --to notebook --execute --allow-errors --ExecutePreprocessor.timeout="$timeout_s" \
       --ExecutePreprocessor.kernel_name=.net-csharp --output-dir "$out" --log-level WARN "$nb" \
       > "$out/${name%.ipynb}.log" 2>&1; then
    echo "jupyter-check: $nb: nbconvert failed (log: $out/${name%.ipynb}.log)"; tail -20 "$out/${name%.ipynb}.log"; status=1; continue
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'jupyter-check: %s executed by the official kernel in %d.%d s\n' "$nb" $((ms / 1000)) $((ms % 1000 / 100))
  pairs+=("$nb" "$out/$name")
done
[ "${#pairs[@]}" -gt 0 ] && { python3 scripts/compare-notebooks.py "${pairs[@]}" || status=1; }
exit $status
