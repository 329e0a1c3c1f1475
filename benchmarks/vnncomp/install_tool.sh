#!/usr/bin/env bash
# VNN-COMP: install the tool.  Usage: install_tool.sh v1
# Installs torch 2.13.0 first, then this package (certnn-prover) from the repository
# that holds this script, into the Python that runs it (PYTHON, default python3).
set -euo pipefail

VERSION="${1:-}"
if [[ "$VERSION" != "v1" ]]; then
    echo "install_tool.sh: expected version string v1, got '$VERSION'" >&2
    exit 1
fi

PYTHON="${PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

"$PYTHON" -m pip install "torch==2.13.0"
"$PYTHON" -m pip install "$ROOT"
"$PYTHON" -m prover vnncomp --help > /dev/null
echo "install_tool.sh: installed certnn-prover from $ROOT"
