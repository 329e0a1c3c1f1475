"""Soundness by sampling for every op of the linear domain's table (zero tolerance)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

from domains import get_domain
from domains.linear.api import linear_bounds
from domains.linear.transfer import TRANSFER
from prover.ir import ops
from prover.ir.graph import Graph, Node

SPATIAL = (2, 4, 4)


def _gemm(rng, n_in, n_out):
    return ops.Gemm(rng.normal(size=(n_out, n_in)), rng.normal(size=n_out) * 0.5)


def _conv(rng, c_in, c_out, **kw):
    group = kw.get("group", 1)
    return ops.Conv(
        rng.normal(size=(c_out, c_in // group, 3, 3)) * 0.5, rng.normal(size=c_out) * 0.3, **kw
    )


def _vector(op, pre=None):
    def build(rng):
        nodes = [Node("g0", _gemm(rng, 3, 5), ("x",))]
        if pre is not None:
            nodes.append(Node("shift", pre(rng), ("g0",)))
        nodes += [
            Node("op", op(rng), (nodes[-1].name,)),
            Node("g1", _gemm(rng, 5, 3), ("op",)),
        ]
        return Graph((("x", (3,)),), tuple(nodes), "g1")

    return build


def _spatial(op):
    """x (2,4,4) -> Conv(3 ch, pad 1) -> Relu -> op -> Reshape -> Gemm(3)."""

    def build(rng):
        made = op(rng)
        flat_size = math.prod(made.infer_shape((3, 4, 4)))
        nodes = (
            Node("c", _conv(rng, 2, 3, pads=(1, 1, 1, 1)), ("x",)),
            Node("r", ops.Relu(), ("c",)),
            Node("op", made, ("r",)),
            Node("flat", ops.Reshape((flat_size,)), ("op",)),
            Node("y", _gemm(rng, flat_size, 3), ("flat",)),
        )
        return Graph((("x", SPATIAL),), nodes, "y")

    return build


def _two_inputs(combine, out_size):
    """x (3,) -> g (4) -> relu; y = Gemm(combine(relu, g))."""

    def build(rng):
        nodes = [
            Node("g", _gemm(rng, 3, 4), ("x",)),
            Node("r", ops.Relu(), ("g",)),
        ]
        nodes += combine(rng)
        nodes.append(Node("y", _gemm(rng, out_size, 2), (nodes[-1].name,)))
        return Graph((("x", (3,)),), tuple(nodes), "y")

    return build


CASES = {
    "Gemm+Relu": _vector(lambda rng: ops.Relu()),
    "AddConst": _vector(lambda rng: ops.AddConst(rng.normal(size=5))),
    "MulConst": _vector(lambda rng: ops.MulConst(rng.normal(size=5))),
    "DivConst": _vector(
        lambda rng: ops.DivConst(rng.uniform(0.5, 2.0, size=5) * rng.choice([-1, 1], 5))
    ),
    "Neg": _vector(lambda rng: ops.Neg()),
    "LeakyRelu0.1": _vector(lambda rng: ops.LeakyRelu(0.1)),
    "LeakyRelu-0.5": _vector(lambda rng: ops.LeakyRelu(-0.5)),
    "LeakyRelu2": _vector(lambda rng: ops.LeakyRelu(2.0)),
    "Sigmoid": _vector(lambda rng: ops.Sigmoid()),
    "Tanh": _vector(lambda rng: ops.Tanh()),
    # Shifted so that some inputs lie wholly in the convex or the concave part.
    "Sigmoid-shifted": _vector(
        lambda rng: ops.Sigmoid(), pre=lambda rng: ops.AddConst(rng.choice([-4.0, 4.0], 5))
    ),
    "Tanh-shifted": _vector(
        lambda rng: ops.Tanh(), pre=lambda rng: ops.AddConst(rng.choice([-3.0, 3.0], 5))
    ),
    "Conv-group": _spatial(
        lambda rng: _conv(rng, 3, 3, group=3, strides=(2, 1), pads=(1, 0, 0, 1))
    ),
    "Conv-dilated": _spatial(lambda rng: _conv(rng, 3, 2, dilations=(2, 1), pads=(2, 1, 0, 0))),
    "MaxPool": _spatial(lambda rng: ops.MaxPool((2, 2), (2, 2))),
    "MaxPool-ceil-pad": _spatial(
        lambda rng: ops.MaxPool((3, 3), (2, 2), pads=(1, 1, 0, 0), ceil_mode=True)
    ),
    "AveragePool": _spatial(lambda rng: ops.AveragePool((2, 2), (1, 1), pads=(1, 1, 0, 0))),
    "AveragePool-incl": _spatial(
        lambda rng: ops.AveragePool((2, 3), (2, 1), pads=(1, 1, 1, 1), count_include_pad=True)
    ),
    "ReduceSum": _spatial(lambda rng: ops.ReduceSum((1,), keepdims=False)),
    "ReduceMean": _spatial(lambda rng: ops.ReduceMean((0, 2), keepdims=True)),
    "Transpose": _spatial(lambda rng: ops.Transpose((1, 2, 0))),
    "Slice": _spatial(lambda rng: ops.Slice((1, 2), (3, 0), (None, 4), (-2, 3))),
    "Gather": _spatial(lambda rng: ops.Gather(np.array([0, 2, 2, 3]), 1)),
    "Pad": _spatial(lambda rng: ops.Pad((0, 1, 0, 0, 0, 2), value=0.7)),
    "Add": _two_inputs(lambda rng: [Node("s", ops.Add(), ("r", "g"))], 4),
    "Sub": _two_inputs(lambda rng: [Node("s", ops.Sub(), ("g", "r"))], 4),
    "Add-broadcast": _two_inputs(
        lambda rng: [
            Node("k", ops.ReduceSum((0,), keepdims=True), ("r",)),
            Node("s", ops.Add(), ("g", "k")),
        ],
        4,
    ),
    "Concat": _two_inputs(lambda rng: [Node("s", ops.Concat(0), ("r", "g"))], 8),
    "ConstantOf": _two_inputs(
        lambda rng: [
            Node("k", ops.ConstantOf(rng.normal(size=4)), ()),
            Node("s", ops.Add(), ("r", "k")),
        ],
        4,
    ),
}


def test_every_rule_has_a_case():
    covered = set()
    for case in CASES.values():
        for node in case(np.random.default_rng(0)).nodes:
            covered.add(type(node.op))
    assert set(TRANSFER.rules) <= covered


@pytest.mark.parametrize("case", sorted(CASES))
def test_sound_on_samples(case, h):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    graph = CASES[case](rng)
    lower, upper = h.random_box(rng, graph.input_shape, batch=3, width=0.8)
    pts = h.samples(lower, upper, 1500, rng)
    ys = h.outputs(graph, pts)
    for name in ("deeppoly", "crown", "alpha-crown"):
        lo, hi = get_domain(name).bound_outputs(graph, lower, upper)
        assert torch.isfinite(lo).all() and torch.isfinite(hi).all()
        lo, hi = lo.reshape(3, 1, -1), hi.reshape(3, 1, -1)
        assert (ys >= lo).all(), f"{name}: lower bound above a sample"
        assert (ys <= hi).all(), f"{name}: upper bound below a sample"
    C = torch.tensor(rng.normal(size=(3, 4, graph.output_size)))
    values = torch.einsum("bmo,bno->bnm", C, ys)
    for steps in (0, 4):
        result = linear_bounds(graph, lower, upper, C, alpha_steps=steps, return_coefficients=True)
        assert (values >= result.lower.unsqueeze(1)).all()
        # The returned linear function is itself a sound lower bound at every sample.
        lin = torch.einsum("bmi,bni->bnm", result.coefficients, pts.reshape(3, pts.shape[1], -1))
        assert (values >= lin + result.constant.unsqueeze(1)).all()
