#!/usr/bin/env bash
# VNN-COMP: prepare one instance.  Usage: prepare_instance.sh v1 BENCHMARK ONNX VNNLIB
# Nothing to prepare: checks the arguments and that both files exist.
set -euo pipefail

if [[ $# -ne 4 ]]; then
    echo "usage: prepare_instance.sh v1 BENCHMARK ONNX VNNLIB" >&2
    exit 1
fi
VERSION="$1"; BENCHMARK="$2"; ONNX="$3"; VNNLIB="$4"
if [[ "$VERSION" != "v1" ]]; then
    echo "prepare_instance.sh: expected version string v1, got '$VERSION'" >&2
    exit 1
fi
for file in "$ONNX" "$VNNLIB"; do
    if [[ ! -f "$file" ]]; then
        echo "prepare_instance.sh: $BENCHMARK: no such file: $file" >&2
        exit 1
    fi
done
exit 0
