"""Time the linear domain (CROWN, alpha-CROWN) on ACAS Xu 1_1 over property 1's box.

Usage::

    python benchmarks/linear_bounds.py [--threads 1] [--batches 1 64 1024] [--repeat 2]

Property 1 claims ``Y_0 <= 3.991...`` on its input box; the row bounded is ``-Y_0``, so a
box is proved when the lower bound exceeds ``-3.991...``. For a batch of ``B`` boxes the
box is tiled by ``B`` sub-boxes (bisecting the relatively widest dimension, as input
splitting does). Prints one row per (B, method): seconds per call (best of ``--repeat``),
milliseconds per box, the mean lower bound and the number of boxes proved. Wall times on
this machine; the load average is printed because the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import torch

from domains.linear.api import linear_bounds
from importers import load_model
from prover.runtime import tune_allocator

ROOT = Path("/work/shared/benchmarks/vnncomp/acasxu")


def _box(vnnlib: Path) -> tuple[torch.Tensor, torch.Tensor]:
    text = vnnlib.read_text()
    lower, upper = [0.0] * 5, [0.0] * 5
    for op, i, v in re.findall(r"\(assert \((<=|>=) X_(\d+) ([-0-9.eE+]+)\)\)", text):
        (upper if op == "<=" else lower)[int(i)] = float(v)
    return torch.tensor(lower, dtype=torch.float64), torch.tensor(upper, dtype=torch.float64)


def _tiles(lower: torch.Tensor, upper: torch.Tensor, count: int):
    boxes = [(lower, upper)]
    width = upper - lower
    while len(boxes) < count:
        new = []
        for lo, hi in boxes:
            dim = int(torch.argmax((hi - lo) / width))
            mid = (lo[dim] + hi[dim]) / 2
            a_hi, b_lo = hi.clone(), lo.clone()
            a_hi[dim], b_lo[dim] = mid, mid
            new += [(lo, a_hi), (b_lo, hi)]
        boxes = new
    boxes = boxes[:count]
    return torch.stack([b[0] for b in boxes]), torch.stack([b[1] for b in boxes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--alpha-steps", type=int, default=20)
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(args.threads)
    graph = load_model(ROOT / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx")
    lower, upper = _box(ROOT / "vnnlib" / "prop_1.vnnlib")
    threshold = -3.991125645861615
    C = torch.zeros(1, graph.output_size, dtype=torch.float64)
    C[0, 0] = -1.0
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.1f}")
    print(f"{'B':>6} {'method':<12} {'s/call':>9} {'ms/box':>9} {'mean lower':>12} {'proved':>7}")
    for batch in args.batches:
        lo, hi = _tiles(lower, upper, batch)
        shape = (batch, *graph.input_shape)
        lo, hi = lo.reshape(shape), hi.reshape(shape)
        for method, steps in (("crown", 0), ("alpha-crown", args.alpha_steps)):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = linear_bounds(graph, lo, hi, C, alpha_steps=steps)
                best = min(best, time.perf_counter() - start)
            bound = result.lower[:, 0]
            proved = int((bound > threshold).sum())
            print(
                f"{batch:>6} {method:<12} {best:>9.3f} {1000 * best / batch:>9.3f} "
                f"{bound.mean().item():>12.4g} {proved:>7}"
            )


if __name__ == "__main__":
    main()
