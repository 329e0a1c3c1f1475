"""Fuse ``Gemm`` followed by ``AddConst`` along the last axis into a Gemm with bias.

This is how ``MatMul + Add`` (imported as a bias-free Gemm and an AddConst) becomes one
Gemm. The Gemm's output must be read only by the AddConst, and the added constant must be
the same for every position except along the last axis (a bias vector).

Equivalence: ``(x W^T + b) + c == x W^T + (b + c)`` over the reals; when ``b == 0`` (the
MatMul case) the new bias ``0 + c`` is exactly ``c``, so nothing is rounded.
"""

from __future__ import annotations

import numpy as np

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.ir.passes.common import fuse_into_sole_consumer

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = False


def last_axis_vector(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as a vector along the last axis of ``shape``, if it only varies there."""
    if value.ndim > len(shape) or any(d != 1 for d in value.shape[:-1]):
        return None
    n = shape[-1] if shape else 1
    return np.broadcast_to(value.reshape(-1), (n,)) if value.ndim else np.full(n, float(value))


def run(graph: Graph) -> Graph:
    """Fold AddConst biases into the preceding Gemm (see the module docstring)."""

    def fuse(node: Node, add: Node) -> ops.Op | None:
        if not isinstance(node.op, ops.Gemm) or not isinstance(add.op, ops.AddConst):
            return None
        vector = last_axis_vector(add.op.value, graph.shapes[node.name])
        if vector is None:
            return None
        return ops.Gemm(node.op.weight, ops.frozen_array(node.op.bias + vector))

    return fuse_into_sole_consumer(graph, fuse)
