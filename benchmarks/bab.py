"""Time branch and bound on ACAS Xu (or MNIST-FC) VNN-COMP instances and check verdicts.

Usage::

    python benchmarks/bab.py                      # the 30-instance sample of peers.md
    python benchmarks/bab.py --all --timeout 116  # all 186 ACAS Xu instances
    python benchmarks/bab.py 2_3:1 4_2:2          # chosen ACAS Xu instances (net:prop)
    python benchmarks/bab.py --suite mnist_fc --all
    python benchmarks/bab.py --device cpu,cuda 4_7:1  # bounding on the GPU, side by side
    python benchmarks/bab.py --clip 0 4_2:2           # without box clipping (ablation)
    python benchmarks/bab.py --alpha off 3_3:2        # without the alpha pass (ablation)

Runs :func:`prover.engine.bab.branch_and_bound` alone (no falsification pre-pass) on
every subproblem of each instance, replaying candidate counterexamples on ONNX Runtime,
and prints one row per instance (verdict, seconds, closed leaves, bounded leaves, depth)
and totals. A verdict that contradicts ``expected.csv`` is counted as WRONG (must be 0).
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import time
from pathlib import Path

import numpy as np
import torch

from importers import load_model
from importers.vnnlib import VNNLib
from prover.engine.bab import BabConfig, branch_and_bound
from prover.engine.verify import make_confirm
from prover.options import Options
from prover.result import Verdict
from prover.runtime import tune_allocator

BENCH = Path("/work/shared/benchmarks")
ANSWER = {Verdict.HOLDS: "unsat", Verdict.VIOLATED: "sat", Verdict.UNKNOWN: "-"}


def peer_sample(suite: str) -> list[tuple[str, str]]:
    """The instances listed in peers.md for ``suite`` (ACAS Xu or MNIST-FC table)."""
    text = (BENCH / "peers.md").read_text()
    pattern = r"^\| (ACASXU_\S+\.onnx) \| (prop_\S+\.vnnlib)"
    if suite == "mnist_fc":
        pattern = r"^\| (mnist-net_\S+\.onnx) \| (prop_\S+\.vnnlib)"
    return [
        (f"onnx/{m.group(1)}", f"vnnlib/{m.group(2)}") for m in re.finditer(pattern, text, re.M)
    ]


def short(onnx: str, vnnlib: str) -> str:
    """``net:prop`` for ACAS Xu (e.g. ``2_3:1``), else the file names."""
    m = re.search(r"run2a_(\d)_(\d)", onnx)
    p = re.search(r"prop_(\d+)\.vnnlib", vnnlib)
    if m and p:
        return f"{m.group(1)}_{m.group(2)}:{p.group(1)}"
    return f"{Path(onnx).stem}:{Path(vnnlib).stem}"


def replayer(graph, sub):
    """The engine's exact replay: rounded to the model's input dtype, strict box
    containment, ONNX Runtime and float64 semantics must both land in an unsafe polytope."""

    def violates(x: np.ndarray, y: np.ndarray) -> bool:
        return any(p.contains(y) for p in sub.unsafe)

    confirm = make_confirm(graph, sub, violates)
    return lambda x: confirm(x) is not None


def solve(
    folder: Path, onnx: str, vnnlib: str, timeout: float, config: BabConfig, device: str = "cpu"
):
    """Run branch and bound on every subproblem; returns (verdict, seconds, stats)."""
    start = time.monotonic()
    graph = load_model(str(folder / onnx))
    spec = VNNLib(folder / vnnlib)
    deadline = start + timeout
    totals = {"leaves": 0, "bounded": 0, "max_depth": 0}
    verdict = Verdict.HOLDS
    for sub in spec.subproblems(graph.input_shape, graph.output_size):
        out = branch_and_bound(
            graph,
            sub,
            Options(device=device),
            deadline,
            check_candidate=replayer(graph, sub),
            config=config,
        )
        for key in ("leaves", "bounded"):
            totals[key] += out.stats.get(key, 0)
        totals["max_depth"] = max(totals["max_depth"], out.stats.get("max_depth", 0))
        if out.verdict is not Verdict.HOLDS:
            verdict = out.verdict
            break
    return verdict, time.monotonic() - start, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("instances", nargs="*", help="net:prop pairs (ACAS Xu), e.g. 2_3:1")
    parser.add_argument("--suite", default="acasxu", choices=["acasxu", "mnist_fc"])
    parser.add_argument("--all", action="store_true", help="every instance of the suite")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per instance")
    parser.add_argument("--batch", type=int, default=BabConfig.batch)
    parser.add_argument("--device-batch", type=int, default=BabConfig.device_batch)
    parser.add_argument("--clip", type=int, default=BabConfig.clip, help="clip sweeps (0: off)")
    parser.add_argument("--alpha", default=BabConfig.alpha, choices=["on", "off", "auto"])
    parser.add_argument(
        "--alpha-after",
        type=int,
        default=BabConfig.input_alpha_after,
        help="bounded leaves before the alpha pass starts (input splits)",
    )
    parser.add_argument("--device", default="cpu", help="comma-separated: cpu, cuda")
    parser.add_argument("--root", type=Path, default=BENCH, help="the benchmarks folder")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = args.root / "vnncomp" / args.suite
    with open(folder / "expected.csv") as handle:
        expected = {(r["onnx"], r["vnnlib"]): r for r in csv.DictReader(handle)}
    if args.all:
        chosen = list(expected)
    elif args.instances:
        index = {short(*key): key for key in expected}
        chosen = [index[name] for name in args.instances]
    else:
        chosen = peer_sample(args.suite)
    config = BabConfig(
        batch=args.batch,
        device_batch=args.device_batch,
        clip=args.clip,
        alpha=args.alpha,
        input_alpha_after=args.alpha_after,
    )
    devices = args.device.split(",")
    solved = dict.fromkeys(devices, 0)
    wrong = dict.fromkeys(devices, 0)
    total = dict.fromkeys(devices, 0.0)
    print(
        f"{'instance':<26} {'device':>6} {'expect':>6} {'got':>6} {'sec':>8} {'closed':>8} "
        f"{'bounded':>9} {'bounded/s':>9} depth"
    )
    for onnx, vnnlib in chosen:
        for device in devices:
            verdict, seconds, stats = solve(folder, onnx, vnnlib, args.timeout, config, device)
            want = expected[(onnx, vnnlib)]["verdict"]
            got = ANSWER[verdict]
            mark = ""
            if got != "-":
                if got == want:
                    solved[device] += 1
                else:
                    wrong[device] += 1
                    mark = "  WRONG"
            total[device] += seconds
            print(
                f"{short(onnx, vnnlib):<26} {device:>6} {want:>6} {got:>6} {seconds:8.2f} "
                f"{stats['leaves']:8d} {stats['bounded']:9d} "
                f"{stats['bounded'] / max(seconds, 1e-9):9.0f} {stats['max_depth']:5d}{mark}",
                flush=True,
            )
    for device in devices:
        print(
            f"{device}: solved {solved[device]}/{len(chosen)}, WRONG {wrong[device]}, "
            f"total {total[device]:.1f} s"
        )


if __name__ == "__main__":
    main()
