#!/usr/bin/env bash
# Everything the project needs on a machine with the .NET 10 SDK: the notebook stack (scripts/setup-notebooks.sh:
# chromium + plotly.js for figure PNGs, jupyter-nbconvert + the dotnet-interactive tool for the official-kernel
# check), NuGet restore, Release build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-notebooks.sh
dotnet restore KvNotebooks.sln
dotnet build KvNotebooks.sln -c Release --no-restore -nologo -clp:ErrorsOnly
