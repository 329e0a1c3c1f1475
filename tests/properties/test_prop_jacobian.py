"""Soundness of the Jacobian bounds by sampling: local derivatives and secant slopes at
random points of the box lie within the bounds."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prover import semantics
from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.properties.jacobian import jacobian_bounds
from prover.properties.lipschitz import local_jacobians
from prover.spec import Box

ACTIVATIONS = {
    "relu": ops.Relu(),
    "leaky": ops.LeakyRelu(0.1),
    "sigmoid": ops.Sigmoid(),
    "tanh": ops.Tanh(),
    "abs": ops.Abs(),
    "clip": ops.Clip(-0.5, 0.5),
    "exp": ops.Exp(),
}


def build(seed: int, act: str, tail: str) -> Graph:
    """x(3) -> Gemm(4) -> act -> [tail] -> Gemm(2) (+ a skip or product path)."""
    rng = np.random.default_rng(seed)
    w1, b1 = rng.normal(size=(4, 3)), rng.normal(size=4)
    w2, b2 = rng.normal(size=(2, 4)), rng.normal(size=2)
    nodes = [Node("h", ops.Gemm(w1, b1), ("x",)), Node("a", ACTIVATIONS[act], ("h",))]
    last = "a"
    if tail == "add":
        nodes.append(Node("t", ops.Add(), ("a", "h")))
        last = "t"
    elif tail == "mul":
        nodes.append(Node("t", ops.Mul(), ("a", "h")))
        last = "t"
    elif tail == "softmax":
        nodes.append(Node("t", ops.Softmax(0), ("a",)))
        last = "t"
    elif tail == "reshape":
        nodes += [
            Node("t0", ops.Reshape((2, 2)), ("a",)),
            Node("t1", ops.Transpose((1, 0)), ("t0",)),
            Node("t", ops.Reshape((4,)), ("t1",)),
        ]
        last = "t"
    elif tail == "mean":
        nodes += [
            Node("t0", ops.ReduceMean((0,), True), ("a",)),
            Node("t1", ops.Sub(), ("a", "t0")),
            Node("t", ops.MulConst(np.array([1.0, -2.0, 0.5, 3.0])), ("t1",)),
        ]
        last = "t"
    nodes.append(Node("y", ops.Gemm(w2, b2), (last,)))
    return Graph((("x", (3,)),), tuple(nodes), "y")


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    act=st.sampled_from(sorted(ACTIVATIONS)),
    tail=st.sampled_from(["none", "add", "mul", "softmax", "reshape", "mean"]),
    center=st.lists(st.floats(-2, 2), min_size=3, max_size=3),
    radius=st.floats(0.0, 1.0),
)
def test_derivatives_and_secants_lie_within_the_bounds(seed, act, tail, center, radius):
    graph = build(seed, act, tail)
    c = np.array(center)
    box = Box(c - radius, c + radius)
    bounds = jacobian_bounds(graph, box)
    assert not np.isnan(bounds.lower).any() and not np.isnan(bounds.upper).any()
    assert np.all(bounds.lower <= bounds.upper)
    rng = np.random.default_rng(seed)
    points = rng.uniform(box.lower, box.upper, size=(40, 3))
    for J in local_jacobians(graph, points):
        # autograd is exact up to float64 rounding of the derivative itself
        slack = 1e-9 * (1 + np.abs(J))
        assert np.all(J >= bounds.lower - slack) and np.all(J <= bounds.upper + slack)
    if radius < 1e-6:  # secants need a step that float64 can resolve
        return
    h = radius / 4
    for x in points[:10]:
        x = np.clip(x, box.lower + h, box.upper - h)
        for k in range(3):
            e = np.zeros(3)
            e[k] = h
            with torch.no_grad():
                ya = semantics.evaluate(graph, x - e)
                yb = semantics.evaluate(graph, x + e)
            secant = (yb - ya) / (2 * h)
            slack = 1e-9 * (1 + np.abs(ya) + np.abs(yb)) / h
            assert np.all(secant >= bounds.lower[:, k] - slack)
            assert np.all(secant <= bounds.upper[:, k] + slack)


def test_region_none_uses_op_ranges() -> None:
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    nodes = (
        Node("h", ops.Gemm(w1, np.zeros(4)), ("x",)),
        Node("s", ops.Sigmoid(), ("h",)),
        Node("y", ops.Gemm(w2, np.zeros(2)), ("s",)),
    )
    graph = Graph((("x", (3,)),), nodes, "y")
    bounds = jacobian_bounds(graph, None)
    # sigmoid' in [0, 1/4] everywhere: |J| <= |w2| (1/4) |w1| (hand-derived envelope)
    envelope = np.abs(w2) @ (0.25 * np.abs(w1))
    assert np.all(bounds.magnitude() <= envelope * (1 + 1e-9) + 1e-12)
    assert np.all(np.isfinite(bounds.lower)) and np.all(np.isfinite(bounds.upper))


def test_log_near_zero_gives_unbounded_derivatives() -> None:
    graph = Graph((("x", (1,)),), (Node("y", ops.Log(), ("x",)),), "y")
    assert np.isinf(jacobian_bounds(graph, Box([0.0], [1.0])).upper).all()
    bounds = jacobian_bounds(graph, Box([0.5], [2.0]))
    assert bounds.lower[0, 0] <= 0.5 and bounds.upper[0, 0] >= 2.0
    assert bounds.upper[0, 0] < 2.0 + 1e-12


ELEMENTWISE = {**ACTIVATIONS, "log": ops.Log(), "sqrt": ops.Sqrt()}


@settings(max_examples=60, deadline=None)
@given(
    act=st.sampled_from(sorted(ELEMENTWISE)),
    lo=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    width=st.floats(0.0, 2.0),
)
def test_elementwise_bounds_are_tight_enough_to_contain_every_derivative(act, lo, width):
    """One elementwise op: J is diagonal, so each derivative (at the corners, at 0 and at
    random points) is compared with its own bound; a bound shrunk by a few percent fails."""
    low = np.array(lo)
    if act in ("log", "sqrt"):
        low = np.abs(low) + 0.1
    box = Box(low, low + width)
    graph = Graph((("x", (3,)),), (Node("y", ELEMENTWISE[act], ("x",)),), "y")
    bounds = jacobian_bounds(graph, box)
    off_diagonal = ~np.eye(3, dtype=bool)
    assert np.all(bounds.lower[off_diagonal] == 0) and np.all(bounds.upper[off_diagonal] == 0)
    rng = np.random.default_rng(0)
    points = np.concatenate(
        [
            [box.lower, box.upper, np.clip(0.0, box.lower, box.upper)],
            rng.uniform(box.lower, box.upper, size=(20, 3)),
        ]
    )
    for J in local_jacobians(graph, points):
        d = np.diag(J)
        slack = 1e-12 * (1 + np.abs(d))
        assert np.all(d >= np.diag(bounds.lower) - slack)
        assert np.all(d <= np.diag(bounds.upper) + slack)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), radius=st.floats(0.01, 0.5))
def test_cnn_bounds_contain_local_jacobians(seed: int, radius: float) -> None:
    """Conv, padding, max and average pooling, flatten and a Gemm."""
    rng = np.random.default_rng(seed)
    nodes = (
        Node("p", ops.Pad((0, 1, 0, 0, 1, 0), 0.25), ("x",)),
        Node("c", ops.Conv(rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2)), ("p",)),
        Node("r", ops.Relu(), ("c",)),
        Node("m", ops.MaxPool((2, 2), (1, 1)), ("r",)),
        Node("a", ops.AveragePool((2, 1), (1, 1)), ("m",)),
        Node("f", ops.Reshape((12,)), ("a",)),
        Node("y", ops.Gemm(rng.normal(size=(2, 12)), np.zeros(2)), ("f",)),
    )
    graph = Graph((("x", (1, 4, 4)),), nodes, "y")
    center = rng.normal(size=(1, 4, 4))
    box = Box(center - radius, center + radius)
    bounds = jacobian_bounds(graph, box)
    points = rng.uniform(box.lower, box.upper, size=(20, 1, 4, 4))
    for J in local_jacobians(graph, points):
        slack = 1e-9 * (1 + np.abs(J))
        assert np.all(J >= bounds.lower - slack) and np.all(J <= bounds.upper + slack)


def _deep_relu(seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    nodes, last = [], "x"
    for k, (a, b) in enumerate([(4, 12), (12, 12), (12, 12), (12, 3)]):
        nodes.append(Node(f"g{k}", ops.Gemm(rng.normal(size=(b, a)), rng.normal(size=b)), (last,)))
        last = f"g{k}"
        if k < 3:
            nodes.append(Node(f"r{k}", ops.Relu(), (last,)))
            last = f"r{k}"
    return Graph((("x", (4,)),), tuple(nodes), last)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), radius=st.floats(0.001, 0.3))
def test_refined_bounds_still_contain_local_jacobians(seed: int, radius: float) -> None:
    graph = _deep_relu(seed)
    center = np.random.default_rng(seed).normal(size=4)
    box = Box(center - radius, center + radius)
    bounds = jacobian_bounds(graph, box, refine=("zonotope", "crown"))
    points = np.random.default_rng(seed + 1).uniform(box.lower, box.upper, size=(30, 4))
    for J in local_jacobians(graph, points):
        slack = 1e-9 * (1 + np.abs(J))
        assert np.all(J >= bounds.lower - slack) and np.all(J <= bounds.upper + slack)


def test_refinement_tightens_a_deep_relu_network() -> None:
    graph = _deep_relu(1)
    center = np.random.default_rng(1).normal(size=4)
    box = Box(center - 0.2, center + 0.2)
    plain = jacobian_bounds(graph, box).lipschitz()
    refined = jacobian_bounds(graph, box, refine=("zonotope",)).lipschitz()
    assert refined < 0.75 * plain
    observed = np.abs(local_jacobians(graph, center[None, :])[0]).sum(axis=1).max()
    assert observed <= refined
