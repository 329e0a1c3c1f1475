"""Tiny graphs, one or more per IR op, with random weights and input boxes.

``CASES[op_class](rng)`` returns a list of :class:`Case`. The soundness tests are
generated from the domains' TRANSFER tables and fail when an op has a rule but no case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.semantics import run


@dataclass
class Case:
    """A graph, a batch of input boxes and whether finite bounds are expected."""

    name: str
    graph: Graph
    lower: torch.Tensor
    upper: torch.Tensor
    finite: bool = True
    samples: int = 700


def _boxes(rng, shape, lo=-1.0, hi=1.0, batch=2) -> tuple[torch.Tensor, torch.Tensor]:
    a = rng.uniform(lo, hi, size=(batch, *shape))
    b = rng.uniform(lo, hi, size=(batch, *shape))
    lower, upper = np.minimum(a, b), np.maximum(a, b)
    lower[0] = np.minimum(lower[0], lo)  # one wide box reaching the edges
    upper[0] = np.maximum(upper[0], hi)
    return torch.from_numpy(lower), torch.from_numpy(upper)


def _graph(shape, nodes, name="case") -> Graph:
    return Graph((("x", tuple(shape)),), tuple(nodes), nodes[-1].name, name)


def _gemm(rng, n_out, n_in, scale=1.0) -> ops.Gemm:
    return ops.Gemm(rng.normal(size=(n_out, n_in)) * scale, rng.normal(size=n_out) * scale)


def unary(op, shape, rng, lo=-1.0, hi=1.0, finite=True, name="") -> Case:
    """``y = op(x)`` on a box in ``[lo, hi]``."""
    lower, upper = _boxes(rng, shape, lo, hi)
    return Case(name or op.name, _graph(shape, [Node("y", op, ("x",))]), lower, upper, finite)


def after_gemm(op, rng, n=4, finite=True, scale=1.0) -> Case:
    """``y = op(W x + b)``: correlated inputs for the zonotope."""
    nodes = [Node("h", _gemm(rng, 5, n, scale), ("x",)), Node("y", op, ("h",))]
    lower, upper = _boxes(rng, (n,))
    return Case(f"{op.name}-after-gemm", _graph((n,), nodes), lower, upper, finite)


def binary(op_class, rng, positive_b=False) -> list[Case]:
    """``op(a, b)`` for correlated branches, branches with fresh symbols, broadcasting."""
    cases = []
    bias = 4.0 if positive_b else 0.0
    gb = _gemm(rng, 4, 6, 0.25)
    gb = ops.Gemm(gb.weight, gb.bias + bias)
    nodes = [
        Node("a", _gemm(rng, 4, 6), ("x",)),
        Node("b", gb, ("x",)),
        Node("y", op_class(), ("a", "b")),
    ]
    lower, upper = _boxes(rng, (6,))
    cases.append(Case(f"{op_class.__name__}-gemms", _graph((6,), nodes), lower, upper))
    nodes = [
        Node("a0", _gemm(rng, 4, 6), ("x",)),
        Node("a", ops.Relu(), ("a0",)),
        Node("b0", gb, ("x",)),
        Node("b", ops.Sigmoid() if positive_b else ops.Relu(), ("b0",)),
        Node("y", op_class(), ("a", "b")),
    ]
    if positive_b:
        nodes[3] = Node("b1", ops.Sigmoid(), ("b0",))
        nodes.insert(4, Node("b", ops.AddConst(np.array(0.5)), ("b1",)))
    cases.append(Case(f"{op_class.__name__}-branches", _graph((6,), nodes), lower, upper))
    nodes = [
        Node("a", ops.Reshape((2, 3)), ("x",)),
        Node("b0", ops.Slice((0,), (0,), (1,), (1,)), ("a",)),
        Node("b", ops.AddConst(np.array(bias)), ("b0",)),
        Node("y", op_class(), ("a", "b")),
    ]
    lo, hi = (0.5, 2.0) if positive_b else (-1.0, 1.0)
    lower, upper = _boxes(rng, (6,), lo, hi)
    cases.append(Case(f"{op_class.__name__}-broadcast", _graph((6,), nodes), lower, upper))
    return cases


def _div_cases(rng) -> list[Case]:
    cases = binary(ops.Div, rng, positive_b=True)
    nodes = [
        Node("a", ops.Slice((0,), (0,), (2,), (1,)), ("x",)),
        Node("b", ops.Slice((0,), (2,), (4,), (1,)), ("x",)),
        Node("y", ops.Div(), ("a", "b")),
    ]
    lower = torch.full((2, 4), -1.0, dtype=torch.float64)
    upper = torch.full((2, 4), 1.0, dtype=torch.float64)
    cases.append(Case("Div-by-zero", _graph((4,), nodes), lower, upper, finite=False))
    nodes.append(Node("z", ops.Clip(-1.0, 1.0), ("y",)))
    cases.append(Case("Div-by-zero-clipped", _graph((4,), nodes), lower, upper, finite=False))
    return cases


def _constant_cases(rng) -> list[Case]:
    value = rng.normal(size=(3,))
    cases = []
    for combine in (ops.Add, ops.Mul, ops.Sub):
        nodes = [Node("c", ops.ConstantOf(value), ()), Node("y", combine(), ("x", "c"))]
        lower, upper = _boxes(rng, (3,))
        cases.append(Case(f"ConstantOf-{combine.__name__}", _graph((3,), nodes), lower, upper))
    return cases


def _conv_cases(rng) -> list[Case]:
    convs = [
        ops.Conv(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), (1, 2), (1, 0, 1, 1)),
        ops.Conv(
            rng.normal(size=(4, 1, 2, 2)), rng.normal(size=4), (1, 1), (0, 0, 0, 0), (2, 2), 2
        ),
    ]
    cases = [unary(conv, (2, 5, 5), rng, name=f"Conv-{i}") for i, conv in enumerate(convs)]
    cases[1].samples = 100  # dilated float64 convolution is very slow in torch
    return cases


def _pool_cases(cls, rng) -> list[Case]:
    extra = {"count_include_pad": True} if cls is ops.AveragePool else {}
    pools = [
        cls((2, 2), (2, 2)),
        cls((3, 3), (1, 1), (1, 1, 1, 1), **extra),
        cls((3, 2), (2, 2), (1, 0, 0, 1), ceil_mode=True),
    ]
    if cls is ops.MaxPool:
        pools.append(cls((2, 2), (1, 1), dilations=(2, 2)))
    cases = [unary(p, (2, 5, 5), rng, name=f"{cls.__name__}-{i}") for i, p in enumerate(pools)]
    for case in cases:
        case.samples = 300
    # Well separated inputs, so that the zonotope's exact (dominant) branch is exercised.
    lower, upper = _boxes(rng, (1, 4, 4), 0.0, 0.1)
    offsets = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    graph = _graph((1, 4, 4), [Node("y", pools[0], ("x",))])
    cases.append(Case(f"{cls.__name__}-separated", graph, lower + offsets, upper + offsets))
    return cases


def _softmax_cases(rng) -> list[Case]:
    cases = [unary(ops.Softmax(axis), (2, 5), rng, -3.0, 3.0) for axis in (0, 1)]
    cases.append(after_gemm(ops.Softmax(0), rng, scale=3.0))
    return cases


def _reduce_cases(cls, rng) -> list[Case]:
    return [
        unary(cls((1,), keepdims=False), (3, 4), rng),
        unary(cls((0, 1), keepdims=True), (3, 4), rng),
    ]


def _concat_cases(rng) -> list[Case]:
    nodes = [
        Node("a", _gemm(rng, 3, 4), ("x",)),
        Node("b", ops.Relu(), ("a",)),
        Node("c", _gemm(rng, 2, 4), ("x",)),
        Node("y", ops.Concat(0), ("b", "c", "a")),
    ]
    lower, upper = _boxes(rng, (4,))
    cases = [Case("Concat-vector", _graph((4,), nodes), lower, upper)]
    nodes = [
        Node("k", ops.ConstantOf(rng.normal(size=(2, 1))), ()),
        Node("y", ops.Concat(1), ("x", "k")),
    ]
    lower, upper = _boxes(rng, (2, 3))
    cases.append(Case("Concat-constant", _graph((2, 3), nodes), lower, upper))
    return cases


def _log_sqrt(op, rng) -> list[Case]:
    return [
        unary(op, (5,), rng, 0.1, 3.0),
        unary(op, (5,), rng, -1.0, 1.0, finite=False, name=f"{op.name}-negative"),
    ]


def _elementwise(op, rng) -> list[Case]:
    return [unary(op, (5,), rng, -2.0, 2.0), after_gemm(op, rng)]


CASES: dict[type[ops.Op], Callable[[np.random.Generator], list[Case]]] = {
    ops.Gemm: lambda rng: [unary(_gemm(rng, 3, 4), (2, 4), rng), after_gemm(_gemm(rng, 2, 5), rng)],
    ops.Conv: _conv_cases,
    ops.AddConst: lambda rng: [unary(ops.AddConst(rng.normal(size=4)), (3, 4), rng)],
    ops.MulConst: lambda rng: [
        unary(ops.MulConst(rng.normal(size=4)), (3, 4), rng),
        after_gemm(ops.MulConst(rng.normal(size=5)), rng),
    ],
    ops.DivConst: lambda rng: [unary(ops.DivConst(rng.normal(size=4) + 3.0), (3, 4), rng)],
    ops.Neg: lambda rng: _elementwise(ops.Neg(), rng),
    ops.Add: lambda rng: binary(ops.Add, rng),
    ops.Sub: lambda rng: binary(ops.Sub, rng),
    ops.Mul: lambda rng: binary(ops.Mul, rng),
    ops.Div: _div_cases,
    ops.ConstantOf: _constant_cases,
    ops.Relu: lambda rng: _elementwise(ops.Relu(), rng),
    ops.LeakyRelu: lambda rng: [
        *(_elementwise(ops.LeakyRelu(0.1), rng)),
        after_gemm(ops.LeakyRelu(-0.5), rng),
        after_gemm(ops.LeakyRelu(2.0), rng),
    ],
    ops.Sigmoid: lambda rng: [
        *_elementwise(ops.Sigmoid(), rng),
        after_gemm(ops.Sigmoid(), rng, scale=8.0),
    ],
    ops.Tanh: lambda rng: [*_elementwise(ops.Tanh(), rng), after_gemm(ops.Tanh(), rng, scale=8.0)],
    ops.Exp: lambda rng: _elementwise(ops.Exp(), rng),
    ops.Log: lambda rng: _log_sqrt(ops.Log(), rng),
    ops.Sqrt: lambda rng: _log_sqrt(ops.Sqrt(), rng),
    ops.Abs: lambda rng: _elementwise(ops.Abs(), rng),
    ops.Clip: lambda rng: [
        *(_elementwise(ops.Clip(-0.5, 0.7), rng)),
        after_gemm(ops.Clip(None, 0.2), rng),
        after_gemm(ops.Clip(-0.3, None), rng),
    ],
    ops.Softmax: _softmax_cases,
    ops.MaxPool: lambda rng: _pool_cases(ops.MaxPool, rng),
    ops.AveragePool: lambda rng: _pool_cases(ops.AveragePool, rng),
    ops.ReduceSum: lambda rng: _reduce_cases(ops.ReduceSum, rng),
    ops.ReduceMean: lambda rng: _reduce_cases(ops.ReduceMean, rng),
    ops.Reshape: lambda rng: [unary(ops.Reshape((3, 4)), (2, 6), rng)],
    ops.Transpose: lambda rng: [unary(ops.Transpose((2, 0, 1)), (2, 3, 4), rng)],
    ops.Concat: _concat_cases,
    ops.Slice: lambda rng: [unary(ops.Slice((0, 1), (1, 4), (None, None), (2, -1)), (6, 5), rng)],
    ops.Gather: lambda rng: [unary(ops.Gather(np.array([[0, 2], [1, 1]]), 1), (3, 4), rng)],
    ops.Pad: lambda rng: [
        unary(ops.Pad((1, 0, 0, 2), 0.5), (2, 3), rng),
        after_gemm(ops.Pad((2, 1), -1.0), rng),
    ],
}


def sample_box(lower: torch.Tensor, upper: torch.Tensor, rng, n_random=700) -> torch.Tensor:
    """Points of one box: uniform, corners (all when few) and boundary points."""
    shape = tuple(lower.shape)
    lo, hi = lower.reshape(-1).numpy(), upper.reshape(-1).numpy()
    dim = lo.size
    uniform = lo + (hi - lo) * rng.uniform(size=(n_random, dim))
    if dim <= 10:
        bits = (np.arange(2**dim)[:, None] >> np.arange(dim)) & 1
    else:
        bits = rng.integers(0, 2, size=(max(n_random // 4, 50), dim))
    corners = np.where(bits == 1, hi, lo)
    boundary = lo + (hi - lo) * rng.uniform(size=(max(n_random // 4, 50), dim))
    snap = rng.integers(0, 3, size=boundary.shape)
    boundary = np.where(snap == 1, lo, np.where(snap == 2, hi, boundary))
    points = np.concatenate([uniform, corners, boundary, ((lo + hi) / 2)[None]])
    return torch.from_numpy(np.clip(points, lo, hi)).reshape((-1, *shape))


def check_contains(graph: Graph, points: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor):
    """Assert every concrete output lies in [lower, upper] (zero tolerance).

    A NaN output requires a non-finite bound at that element; a NaN bound claims nothing.
    """
    with torch.no_grad():
        y = run(graph, points)
    y, lo, hi = y.reshape(y.shape[0], -1), lower.reshape(1, -1), upper.reshape(1, -1)
    nan_out = torch.isnan(y)
    finite_bounds = torch.isfinite(lo) & torch.isfinite(hi)
    assert not bool((nan_out & finite_bounds).any()), "NaN output under finite bounds"
    below = (y < lo) & ~nan_out
    above = (y > hi) & ~nan_out
    if bool(below.any() | above.any()):
        idx = torch.nonzero(below | above)[0]
        raise AssertionError(
            f"output {int(idx[1])} = {float(y[tuple(idx)])!r} outside "
            f"[{float(lo[0, idx[1]])!r}, {float(hi[0, idx[1]])!r}]"
        )
    return y
