#!/usr/bin/env bash
# Installs what the notebook stack needs beyond the .NET SDK:
#   - Debian chromium (headless renderer of figure PNGs for `kvnb notebooks run`), skipped when a chromium is
#     already on PATH or KVNB_CHROMIUM is set;
#   - Debian jupyter-nbconvert and python3-nbclient (Jupyter, to run the notebooks on the official kernel in
#     scripts/jupyter-check.sh), skipped when both are present;
#   - plotly.js-dist-min from package-lock.json into ./node_modules (npm ci), skipped when already present;
#   - the dotnet-interactive tool pinned in .config/dotnet-tools.json (dotnet tool restore; a no-op when cached).
# Idempotent: running it twice installs nothing the second time. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

have_chromium() {
  if [ -n "${KVNB_CHROMIUM:-}" ] && [ -x "${KVNB_CHROMIUM}" ]; then return 0; fi
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}
have_jupyter() {
  # Debian's packages (not pip's): jupyter-nbconvert runs on /usr/bin/python3, whatever python3 is on PATH.
  command -v jupyter-nbconvert >/dev/null 2>&1 && dpkg -s python3-nbclient >/dev/null 2>&1
}

apt_packages=()
if have_chromium; then
  echo "setup-notebooks: chromium present ($(command -v chromium || command -v chromium-browser || echo "$KVNB_CHROMIUM"))"
else
  apt_packages+=(chromium)
fi
if have_jupyter; then
  echo "setup-notebooks: jupyter-nbconvert and nbclient present"
else
  apt_packages+=(jupyter-nbconvert python3-nbclient)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "setup-notebooks: installing ${apt_packages[*]} (apt-get)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
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

echo "setup-notebooks: dotnet tool restore (dotnet-interactive, .config/dotnet-tools.json)"
DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet tool restore >/dev/null
