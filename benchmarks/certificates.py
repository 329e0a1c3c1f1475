"""Proving time, certificate size and independent checking time, side by side.

Usage::

    python benchmarks/certificates.py                    # a default ACAS Xu sample
    python benchmarks/certificates.py 1_1:3 3_3:4 1_9:7  # chosen instances (net:prop)
    python benchmarks/certificates.py --timeout 116 --out /tmp/certs
    python benchmarks/certificates.py --all --timeout 116  # all 186 instances, a summary

For each instance it runs ``prover.api.prove`` with a certificate (the prover's own
check switched off), then checks the certificate with ``proofs.checker`` in this process
(model file read and lowered by the checker, every leaf replayed) and prints one row:
expected verdict, verdict, proving seconds, certificate leaves and kilobytes, checking
seconds, and whether the checker accepted it. Times are wall seconds on this machine.
The last lines sum up: instances decided, certificates accepted, and on how many checking
took less time than proving (with the totals). Certificates are deleted after checking
unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import time
from pathlib import Path

from importers.vnnlib import VNNLib
from proofs.checker import check_certificate
from prover.api import prove
from prover.runtime import tune_allocator

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


def _all_instances() -> list[str]:
    items = []
    with open(ROOT / "instances.csv") as handle:
        for onnx, vnnlib, *_ in csv.reader(handle):
            net = re.search(r"run2a_(\d_\d)_", onnx).group(1)
            prop = re.search(r"prop_(\d+)", vnnlib).group(1)
            items.append(f"{net}:{prop}")
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="*", help="net:prop, e.g. 1_1:3 (default sample)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", default="/tmp/certnn-certificates")
    parser.add_argument("--all", action="store_true", help="every instance of instances.csv")
    parser.add_argument("--keep", action="store_true", help="keep the certificates")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tune_allocator()  # as the prover command does
    import torch

    torch.set_num_threads(1)  # as the prover command does
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    expected = _expected()
    header = f"{'instance':<10} {'expect':>6} {'verdict':>8} {'prove s':>8} {'leaves':>7} "
    header += f"{'KiB':>8} {'check s':>8}  checker"
    print(header, flush=True)
    totals = {"decided": 0, "valid": 0, "faster": 0, "prove": 0.0, "check": 0.0, "wrong": 0}
    for item in _all_instances() if args.all else args.instances or DEFAULT:
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
        answer = {"holds": "unsat", "violated": "sat"}.get(result.verdict.value)
        if answer is not None and want in ("sat", "unsat") and answer != want:
            totals["wrong"] += 1
        if not cert.exists():
            print(row + f"{'-':>7} {'-':>8} {'-':>8}  (no certificate)", flush=True)
            continue
        size = cert.stat().st_size / 1024
        leaves = _leaves(json.loads(cert.read_text()))
        start = time.perf_counter()
        report = check_certificate(str(cert), model=str(model), spec=str(spec))
        checking = time.perf_counter() - start
        verdict = "VALID" if report.valid else f"REJECTED: {report.reason[:60]}"
        if report.trusted:
            verdict += f" (trusted: {len(report.trusted)})"
        print(row + f"{leaves:>7} {size:>8.1f} {checking:>8.2f}  {verdict}", flush=True)
        totals["decided"] += 1
        totals["valid"] += int(report.valid)
        totals["faster"] += int(checking < proving)
        totals["prove"] += proving
        totals["check"] += checking
        if not args.keep:
            cert.unlink(missing_ok=True)
    print(
        f"decided {totals['decided']}, certificates VALID {totals['valid']}, "
        f"checking faster than proving on {totals['faster']}, wrong verdicts {totals['wrong']}"
    )
    print(f"total prove {totals['prove']:.1f} s, total check {totals['check']:.1f} s")


if __name__ == "__main__":
    main()
