"""Proving time, certificate size and independent checking time, side by side.

Usage::

    python benchmarks/certificates.py                    # a default ACAS Xu sample
    python benchmarks/certificates.py 1_1:3 3_3:4 1_9:7  # chosen instances (net:prop)
    python benchmarks/certificates.py --timeout 116 --out /tmp/certs

For each instance it runs ``prover.api.prove`` with a certificate (the prover's own
check switched off), then checks the certificate with ``proofs.checker`` in this process
(model file read and lowered by the checker, every leaf replayed) and prints one row:
expected verdict, verdict, proving seconds, certificate leaves and kilobytes, checking
seconds, and whether the checker accepted it. Times are wall seconds on this machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path

from importers.vnnlib import VNNLib
from proofs.checker import check_certificate
from prover.api import prove

ROOT = Path("/work/shared/benchmarks/vnncomp/acasxu")
DEFAULT = ["1_1:3", "1_1:4", "3_3:4", "2_1:3", "1_2:3", "1_1:1", "1_9:7", "4_2:2", "2_3:1"]


def _leaves(doc: dict) -> int:
    trees = doc.get("evidence", {}).get("trees", [])
    total, stack = 0, list(trees)
    while stack:
        node = stack.pop()
        if "parts" in node:
            stack += [p["tree"] for p in node["parts"]]
        elif "split" in node:
            stack += [v for v in node.values() if isinstance(v, dict)]
        else:
            total += 1
    return total


def _expected() -> dict[tuple[str, str], str]:
    table = {}
    path = ROOT / "expected.csv"
    if path.exists():
        with open(path) as handle:
            for row in csv.DictReader(handle):
                table[(Path(row["onnx"]).name, Path(row["vnnlib"]).name)] = row["verdict"]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="*", help="net:prop, e.g. 1_1:3 (default sample)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", default="/tmp/certnn-certificates")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    expected = _expected()
    header = f"{'instance':<10} {'expect':>6} {'verdict':>8} {'prove s':>8} {'leaves':>7} "
    header += f"{'KiB':>8} {'check s':>8}  checker"
    print(header)
    for item in args.instances or DEFAULT:
        net, prop = item.split(":")
        model = ROOT / "onnx" / f"ACASXU_run2a_{net}_batch_2000.onnx"
        spec = ROOT / "vnnlib" / f"prop_{prop}.vnnlib"
        cert = out / f"acas_{net}_prop{prop}.json"
        cert.unlink(missing_ok=True)
        start = time.perf_counter()
        result = prove(
            str(model), VNNLib(str(spec)), certificate=cert, check=False, timeout=args.timeout
        )
        proving = time.perf_counter() - start
        want = expected.get((model.name, spec.name), "?")
        row = f"{item:<10} {want:>6} {result.verdict.value:>8} {proving:>8.2f} "
        if not cert.exists():
            print(row + f"{'-':>7} {'-':>8} {'-':>8}  (no certificate)")
            continue
        size = cert.stat().st_size / 1024
        leaves = _leaves(json.loads(cert.read_text()))
        start = time.perf_counter()
        report = check_certificate(str(cert), model=str(model), spec=str(spec))
        checking = time.perf_counter() - start
        verdict = "VALID" if report.valid else f"REJECTED: {report.reason[:60]}"
        if report.trusted:
            verdict += f" (trusted: {len(report.trusted)})"
        print(row + f"{leaves:>7} {size:>8.1f} {checking:>8.2f}  {verdict}")


if __name__ == "__main__":
    main()
