#!/usr/bin/env bash
# VNN-COMP: run one instance.
# Usage: run_instance.sh v1 BENCHMARK ONNX VNNLIB RESULTS_FILE TIMEOUT
# Writes RESULTS_FILE: unsat | sat + counterexample | unknown | timeout | error.
set -uo pipefail

if [[ $# -ne 6 ]]; then
    echo "usage: run_instance.sh v1 BENCHMARK ONNX VNNLIB RESULTS_FILE TIMEOUT" >&2
    exit 1
fi
VERSION="$1"; BENCHMARK="$2"; ONNX="$3"; VNNLIB="$4"; RESULTS_FILE="$5"; TIMEOUT="$6"
if [[ "$VERSION" != "v1" ]]; then
    echo "run_instance.sh: expected version string v1, got '$VERSION'" >&2
    exit 1
fi

PYTHON="${PYTHON:-python3}"
echo "run_instance.sh: $BENCHMARK: $ONNX $VNNLIB (timeout $TIMEOUT s)" >&2
exec "$PYTHON" -m prover vnncomp "$ONNX" "$VNNLIB" \
    --timeout "$TIMEOUT" --results-file "$RESULTS_FILE" --hard-exit
