"""Time the interval and zonotope domains on VNN-COMP networks and compare tightness.

Usage::

    python benchmarks/bounds.py [--root /work/shared/benchmarks/vnncomp] [--repeat 1]
        [--batch]

For every ACAS Xu and MNIST-FC instance, over its VNN-LIB input box(es) (read with the
VNN-LIB importer; a disjunctive region counts one box per disjunct), it bounds the
network's outputs over the box with each domain and prints one row per (domain, benchmark): number
of instances, mean output-bound width, total seconds of ``bound_outputs`` and of
``bound_linear`` (with ``C`` = the identity and its negation). With ``--batch`` it also
times one batched call per network over all of its boxes. Times are wall seconds on this
machine and include no import or model loading.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from domains import get_domain
from importers import load_model
from importers.vnnlib import VNNLib
from prover.runtime import tune_allocator

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "vnncomp"


def read_boxes(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The input boxes of a VNN-LIB file (one per distinct input disjunct)."""
    spec = VNNLib(path)
    boxes = {}
    for box in spec.boxes:
        lo, hi = np.array(box.lower, dtype=np.float64), np.array(box.upper, dtype=np.float64)
        boxes[(lo.tobytes(), hi.tobytes())] = (lo, hi)
    return list(boxes.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(DEFAULT_ROOT))
    parser.add_argument("--benchmarks", nargs="+", default=["acasxu", "mnist_fc"])
    parser.add_argument("--batch", action="store_true", help="also time batched calls")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    notes = []
    domains = [get_domain("interval"), get_domain("zonotope")]
    rows = []
    for bench in args.benchmarks:
        folder = Path(args.root) / bench
        graphs, boxes = {}, defaultdict(list)
        skipped = 0
        with open(folder / "instances.csv") as handle:
            for onnx_path, vnnlib_path, *_ in csv.reader(handle):
                found = read_boxes(folder / vnnlib_path)
                if not found:
                    skipped += 1
                    continue
                if onnx_path not in graphs:
                    graphs[onnx_path] = load_model(folder / onnx_path)
                boxes[onnx_path].extend(found)
        widths: dict[str, list[float]] = defaultdict(list)
        for domain in domains:
            seconds = linear_seconds = batch_seconds = 0.0
            for onnx_path, graph in graphs.items():
                shape = graph.input_shape
                for lo, hi in boxes[onnx_path]:
                    lower = torch.from_numpy(lo.reshape((1, *shape)))
                    upper = torch.from_numpy(hi.reshape((1, *shape)))
                    start = time.perf_counter()
                    out_lo, out_hi = domain.bound_outputs(graph, lower, upper)
                    seconds += time.perf_counter() - start
                    widths[domain.name].append(float((out_hi - out_lo).mean()))
                    eye = torch.eye(graph.output_size, dtype=torch.float64)
                    start = time.perf_counter()
                    domain.bound_linear(graph, lower, upper, torch.cat([eye, -eye]))
                    linear_seconds += time.perf_counter() - start
                if args.batch:
                    stacked = [
                        np.stack([b[i].reshape(shape) for b in boxes[onnx_path]]) for i in (0, 1)
                    ]
                    lower, upper = (torch.from_numpy(t) for t in stacked)
                    start = time.perf_counter()
                    domain.bound_outputs(graph, lower, upper)
                    batch_seconds += time.perf_counter() - start
            rows.append(
                (
                    domain.name,
                    bench,
                    len(widths[domain.name]),
                    skipped,
                    float(np.mean(widths[domain.name])),
                    seconds,
                    linear_seconds,
                    batch_seconds if args.batch else float("nan"),
                )
            )
        a, b = (np.array(widths[d.name]) for d in domains)
        notes.append(
            f"{bench}: zonotope mean width below interval's on {int(np.sum(b < a))} of "
            f"{len(a)} instances; ratio of means {b.mean() / a.mean():.3f}"
        )
    header = ("domain", "network", "boxes", "skipped", "mean width", "bound s", "linear s")
    header += ("batched s",)
    print(" | ".join(f"{h:>17}" for h in header))
    for row in rows:
        name, bench, count, skipped, width, secs, lin, batch = row
        print(
            f"{name:>17} | {bench:>17} | {count:>17} | {skipped:>17} | {width:>17.6g} | "
            f"{secs:>17.3f} | {lin:>17.3f} | {batch:>17.3f}"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
