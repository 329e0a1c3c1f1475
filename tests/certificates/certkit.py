"""Shared helpers: benchmark paths, proof-tree builders, certificate factories.

Proof trees here stand in for branch and bound: input-splitting trees whose leaves are
closed by the linear domain (``domains.linear``) or, for speed, by a plain interval test
written in this file; the certificates go through the real writer and checker.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from importers.onnx import import_onnx
from importers.vnnlib import VNNLib
from proofs.writer import write_certificate
from prover.engine.proof import Closed, InputSplit, ReluSplit
from prover.ir import ops

BENCH = Path("/work/shared/benchmarks/vnncomp")
TEST = BENCH / "test"
ACAS = BENCH / "acasxu"

needs_bench = pytest.mark.skipif(not TEST.exists(), reason="benchmarks not available")


def acas(a: int, b: int) -> Path:
    return ACAS / "onnx" / f"ACASXU_run2a_{a}_{b}_batch_2000.onnx"


def load(model: Path, spec: Path):
    graph = import_onnx(str(model))
    subs = VNNLib(str(spec)).subproblems(graph.input_shape, graph.output_size)
    return graph, subs


def ibp_output(graph, lower: np.ndarray, upper: np.ndarray):
    """Plain (not rigorous) interval propagation for the test's split decisions."""
    values = {graph.input_name: (lower.reshape(-1), upper.reshape(-1))}
    for node in graph.nodes:
        lo, hi = values[node.inputs[0]]
        op = node.op
        if isinstance(op, ops.Gemm):
            pos, neg = np.maximum(op.weight, 0), np.minimum(op.weight, 0)
            lo, hi = pos @ lo + neg @ hi + op.bias, pos @ hi + neg @ lo + op.bias
        elif isinstance(op, ops.AddConst):
            c = np.broadcast_to(op.value, graph.shapes[node.name]).reshape(-1)
            lo, hi = lo + c, hi + c
        elif isinstance(op, ops.Relu):
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
        elif not isinstance(op, ops.Reshape):
            raise NotImplementedError(type(op).__name__)
        values[node.name] = (lo, hi)
    return values[graph.output]


def interval_closes(graph, sub, lower, upper, margin: float = 1e-9) -> bool:
    lo, hi = ibp_output(graph, lower, upper)
    for poly in sub.unsafe:
        low = np.maximum(poly.C, 0) @ lo + np.minimum(poly.C, 0) @ hi
        if not np.any(low > poly.d + margin):
            return False
    return True


def split_tree(graph, sub, closes, lower=None, upper=None, depth=0, max_depth=16, force=0):
    """Bisect the widest dimension until ``closes(lower, upper)`` gives a leaf."""
    lower = sub.box.lower.reshape(-1) if lower is None else lower
    upper = sub.box.upper.reshape(-1) if upper is None else upper
    if depth >= force:
        leaf = closes(lower, upper)
        if leaf is not None:
            return leaf
    if depth >= max_depth:
        raise RuntimeError("tree too deep")
    dim = int(np.argmax(upper - lower))
    mid = float((lower[dim] + upper[dim]) / 2)
    below_hi, above_lo = upper.copy(), lower.copy()
    below_hi[dim], above_lo[dim] = mid, mid
    return InputSplit(
        dim,
        mid,
        split_tree(graph, sub, closes, lower, below_hi, depth + 1, max_depth, force),
        split_tree(graph, sub, closes, above_lo, upper, depth + 1, max_depth, force),
    )


def interval_leaf(graph, sub):
    def closes(lower, upper):
        return Closed("interval") if interval_closes(graph, sub, lower, upper) else None

    return closes


def linear_leaf(graph, sub, alpha_steps: int = 0):
    """Close with the project's linear domain (CROWN, or alpha-CROWN with slopes)."""
    from domains.linear.api import linear_bounds

    C = np.concatenate([p.C for p in sub.unsafe])
    d = np.concatenate([p.d for p in sub.unsafe])
    spans = np.cumsum([0] + [len(p.d) for p in sub.unsafe])

    def closes(lower, upper):
        shape = (1, *graph.input_shape)
        res = linear_bounds(
            graph, lower.reshape(shape), upper.reshape(shape), C, alpha_steps=alpha_steps
        )
        low = res.lower.detach().numpy().reshape(-1)
        rows = []
        for s, e in zip(spans[:-1], spans[1:], strict=True):
            ok = low[s:e] > d[s:e]
            if not ok.any():
                return None
            rows.append(int(np.argmax(ok)))
        evidence = {"rows": rows}
        if alpha_steps:
            evidence["slopes"] = {
                k: v.detach().numpy().reshape(-1).tolist() for k, v in res.slopes.items()
            }
        return Closed("linear", evidence, "crown")

    return closes


def relu_inputs(graph) -> list[str]:
    return [n.inputs[0] for n in graph.nodes if isinstance(n.op, ops.Relu)]


def make_cert(path, model, spec, tree=None, counterexample=None, claim="holds", graph=None):
    graph_, subs = load(model, spec)
    graph = graph or graph_
    write_certificate(
        path,
        graph=graph,
        model_path_or_bytes=str(model),
        subproblems=subs,
        claim=claim,
        tree=tree,
        counterexample=counterexample,
        spec_path=str(spec),
    )
    return json.loads(Path(path).read_text())


__all__ = [
    "ACAS",
    "BENCH",
    "Closed",
    "InputSplit",
    "ReluSplit",
    "TEST",
    "acas",
    "interval_leaf",
    "linear_leaf",
    "load",
    "make_cert",
    "needs_bench",
    "relu_inputs",
    "split_tree",
]
