"""Soundness by sampling on random small graphs (hypothesis): Gemm/Conv/activations/
residual Adds/pooling, for every domain, for bound_outputs and bound_linear."""

from __future__ import annotations

import functools

import numpy as np
import torch
from domain_cases import check_contains, sample_box
from hypothesis import given, settings
from hypothesis import strategies as st

from domains import get_domain
from prover.ir import ops
from prover.ir.graph import Graph, Node

DOMAINS = [get_domain("interval"), get_domain("zonotope")]
PLAIN = (
    functools.partial(DOMAINS[1].bound_outputs, interval_hints=False),
    functools.partial(DOMAINS[1].bound_linear, interval_hints=False),
)
ACTIVATIONS = st.sampled_from(["relu", "sigmoid", "tanh", "leaky", "none", "abs"])


def _activation(kind: str):
    return {
        "relu": ops.Relu(),
        "sigmoid": ops.Sigmoid(),
        "tanh": ops.Tanh(),
        "leaky": ops.LeakyRelu(0.2),
        "abs": ops.Abs(),
    }.get(kind)


@st.composite
def dense_graphs(draw):
    """A chain of Gemm + activation layers with optional residual Adds."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    width = draw(st.integers(2, 5))
    n_in = draw(st.integers(1, 4))
    nodes, prev, count = [], "x", 0
    dim = n_in
    for _ in range(draw(st.integers(1, 4))):
        count += 1
        gemm = ops.Gemm(rng.normal(size=(width, dim)), rng.normal(size=width) * 0.5)
        nodes.append(Node(f"g{count}", gemm, (prev,)))
        out = f"g{count}"
        act = _activation(draw(ACTIVATIONS))
        if act is not None:
            nodes.append(Node(f"a{count}", act, (out,)))
            out = f"a{count}"
        if dim == width and draw(st.booleans()):
            nodes.append(Node(f"res{count}", ops.Add(), (out, prev)))
            out = f"res{count}"
        prev, dim = out, width
    n_out = draw(st.integers(1, 3))
    nodes.append(
        Node("out", ops.Gemm(rng.normal(size=(n_out, dim)), rng.normal(size=n_out)), (prev,))
    )
    graph = Graph((("x", (n_in,)),), tuple(nodes), "out")
    return graph, rng


@st.composite
def conv_graphs(draw):
    """Conv -> activation -> pooling -> (optional residual) -> flatten -> Gemm."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    channels = draw(st.integers(1, 2))
    conv = ops.Conv(rng.normal(size=(2, channels, 2, 2)), rng.normal(size=2), (1, 1), (0, 0, 1, 1))
    nodes = [Node("c", conv, ("x",))]
    act = _activation(draw(ACTIVATIONS))
    prev = "c"
    if act is not None:
        nodes.append(Node("a", act, ("c",)))
        prev = "a"
    if draw(st.booleans()):
        nodes.append(Node("c2", ops.Conv(rng.normal(size=(2, 2, 1, 1)), np.zeros(2)), (prev,)))
        nodes.append(Node("res", ops.Add(), ("c2", prev)))
        prev = "res"
    pool = draw(st.sampled_from([ops.MaxPool, ops.AveragePool]))
    nodes.append(Node("p", pool((2, 2), (2, 2)), (prev,)))
    nodes.append(Node("f", ops.Reshape((8,)), ("p",)))
    nodes.append(Node("out", ops.Gemm(rng.normal(size=(2, 8)), rng.normal(size=2)), ("f",)))
    graph = Graph((("x", (channels, 4, 4)),), tuple(nodes), "out")
    return graph, rng


def _check(graph: Graph, rng: np.random.Generator) -> None:
    shape = graph.input_shape
    center = rng.uniform(-1, 1, size=(2, *shape))
    radius = rng.uniform(0, 0.6, size=(2, *shape))
    lower, upper = torch.from_numpy(center - radius), torch.from_numpy(center + radius)
    C = torch.from_numpy(rng.normal(size=(2, graph.output_size)))
    points = [sample_box(lower[b], upper[b], rng, 300) for b in range(2)]
    methods = [(d.bound_outputs, d.bound_linear) for d in DOMAINS] + [PLAIN]
    for bound_outputs, bound_linear in methods:
        lo, hi = bound_outputs(graph, lower, upper)
        linear = bound_linear(graph, lower, upper, C)
        assert torch.isfinite(lo).all() and torch.isfinite(hi).all()
        for b in range(2):
            y = check_contains(graph, points[b], lo[b], hi[b])
            assert ((y @ C.T).min(dim=0).values >= linear[b]).all()


@settings(max_examples=30, deadline=None)
@given(dense_graphs())
def test_random_dense_graphs_are_sound(case):
    _check(*case)


@settings(max_examples=20, deadline=None)
@given(conv_graphs())
def test_random_conv_graphs_are_sound(case):
    _check(*case)
