"""Shared helpers of the linear-domain tests (exposed as fixtures)."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.semantics import run


def chain(input_shape, layers, name="net"):
    """A graph applying ``layers`` (ops) one after the other to input ``x``."""
    nodes, prev = [], "x"
    for i, op in enumerate(layers):
        nodes.append(Node(f"v{i}", op, (prev,)))
        prev = f"v{i}"
    return Graph((("x", tuple(input_shape)),), tuple(nodes), prev, name)


def mlp(rng, widths, activation=ops.Relu, scale=1.0):
    """Random fully connected network with ``widths = [n_in, h1, ..., n_out]``."""
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
        layers.append(ops.Gemm(rng.normal(size=(b, a)) * scale, rng.normal(size=b) * 0.5))
        if i < len(widths) - 2:
            layers.append(activation())
    return chain((widths[0],), layers)


def random_box(rng, shape, batch=1, width=1.0):
    centre = rng.normal(size=(batch, *shape))
    radius = rng.uniform(0.0, width, size=(batch, *shape))
    return torch.tensor(centre - radius), torch.tensor(centre + radius)


def samples(lower, upper, n, rng, corners=True):
    """``(B, n', *shape)`` points of each box: uniform ones plus some vertices."""
    batch = lower.shape[0]
    shape = tuple(lower.shape[1:])
    t = torch.tensor(rng.uniform(size=(batch, n, *shape)))
    pts = lower.unsqueeze(1) + (upper - lower).unsqueeze(1) * t
    size = math.prod(shape)
    if corners:
        k = min(256, 2**size) if size <= 16 else 256
        if size <= 8:
            bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=size))[:k])
        else:
            bits = torch.tensor(rng.integers(0, 2, size=(k, size)).astype(np.float64))
        bits = bits.reshape(1, -1, *shape)
        pts = torch.cat([pts, lower.unsqueeze(1) + (upper - lower).unsqueeze(1) * bits], 1)
    return pts


def outputs(graph, pts):
    """Evaluate every point: ``(B, n, n_out)`` flat outputs."""
    batch, n = pts.shape[:2]
    with torch.no_grad():
        y = run(graph, pts.reshape(batch * n, *pts.shape[2:]))
    return y.reshape(batch, n, -1)


def interval_bounds(graph, lower, upper):
    """Plain interval propagation for Gemm/ReLU chains (no rounding care; for comparison)."""
    lb, ub = lower.reshape(lower.shape[0], -1), upper.reshape(upper.shape[0], -1)
    for node in graph.nodes:
        op = node.op
        if isinstance(op, ops.Gemm):
            w = torch.tensor(op.weight)
            c, r = (lb + ub) / 2, (ub - lb) / 2
            c = c @ w.T + torch.tensor(op.bias)
            r = r @ w.abs().T
            lb, ub = c - r, c + r
        elif isinstance(op, ops.Relu):
            lb, ub = lb.clamp(min=0), ub.clamp(min=0)
        else:
            raise NotImplementedError(type(op))
    return lb, ub


@pytest.fixture(scope="session")
def h():
    return SimpleNamespace(
        chain=chain,
        mlp=mlp,
        random_box=random_box,
        samples=samples,
        outputs=outputs,
        interval_bounds=interval_bounds,
    )
