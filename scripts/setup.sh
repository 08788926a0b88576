#!/usr/bin/env bash
# Everything the project needs on a machine with the .NET 10 SDK: the notebook stack (scripts/setup-notebooks.sh:
# chromium + plotly.js for figure PNGs, jupyter-nbconvert + the dotnet-interactive tool for the official-kernel
# check), NuGet restore, TorchSharp's native glue made loadable on this libstdc++ (scripts/patch-libtorchsharp.py),
# Release build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-notebooks.sh
dotnet restore KvNotebooks.sln
# libLibTorchSharp.so (TorchSharp 0.107.0) asks for GLIBCXX_3.4.32 for one unused symbol; Debian 12 has 3.4.30.
# Mark it weak in the restored package, before the build copies it (environment.md, "TorchSharp").
packages="${NUGET_PACKAGES:-$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')}"
python3 scripts/patch-libtorchsharp.py "$packages/torchsharp/0.107.0/runtimes/linux-x64/native/libLibTorchSharp.so"
dotnet build KvNotebooks.sln -c Release --no-restore -nologo -clp:ErrorsOnly
