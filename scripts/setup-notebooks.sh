#!/usr/bin/env bash
# Installs what `kvnb notebooks run` needs to turn figures into PNGs:
#   - Debian chromium (headless renderer), skipped when a chromium is already on PATH or KVNB_CHROMIUM is set;
#   - plotly.js-dist-min from package-lock.json into ./node_modules (npm ci), skipped when already present.
# Idempotent: running it twice does nothing the second time. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

have_chromium() {
  if [ -n "${KVNB_CHROMIUM:-}" ] && [ -x "${KVNB_CHROMIUM}" ]; then return 0; fi
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

if have_chromium; then
  echo "setup-notebooks: chromium present ($(command -v chromium || command -v chromium-browser || echo "$KVNB_CHROMIUM"))"
else
  echo "setup-notebooks: installing chromium (apt-get)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi

if [ -f node_modules/plotly.js-dist-min/plotly.min.js ]; then
  echo "setup-notebooks: plotly.js present (node_modules/plotly.js-dist-min)"
else
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup-notebooks: npm not found; install Node.js (apt-get install -y npm) and re-run" >&2
    exit 1
  fi
  echo "setup-notebooks: installing plotly.js-dist-min (npm ci)"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi
