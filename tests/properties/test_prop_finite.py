"""Finite(): proofs by per-node bounds, counterexamples replayed on ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper
from prop_models import onnx_bytes, random_mlp

from prover.api import load, prove
from prover.properties import Finite
from prover.properties.common import float32_trace
from prover.result import Verdict
from prover.spec import Box


def log_softmax_model(n: int = 3):
    nodes = [
        helper.make_node("Log", ["x"], ["logx"]),
        helper.make_node("Softmax", ["logx"], ["y"], axis=1),
    ]
    return load(onnx_bytes(nodes, n, n))


def test_log_of_zero_before_softmax_is_not_finite() -> None:
    graph = log_softmax_model()
    result = prove(graph, Finite(), Box(np.zeros(3), np.ones(3)))
    assert result.verdict is not Verdict.HOLDS
    assert result.verdict is Verdict.VIOLATED
    assert result.stats["node"] == "logx"
    x = result.counterexample
    assert np.all(x >= 0) and np.all(x <= 1)
    with np.errstate(divide="ignore"):
        assert np.any(np.isinf(np.log(x.astype(np.float32))))
    assert "logx" in result.reason


def test_log_bounded_away_from_zero_holds() -> None:
    result = prove(log_softmax_model(), Finite(), Box(np.full(3, 0.5), np.ones(3)))
    assert result.verdict is Verdict.HOLDS
    assert "ASSUMPTION" in result.soundness


def test_bounded_mlp_holds_and_region_none_is_the_float32_box() -> None:
    graph, _ = random_mlp(1, (3, 5, 2))
    assert prove(graph, Finite(), Box(-np.ones(3), np.ones(3))).holds
    # Over every finite float32 input the first Gemm overflows float32.
    result = prove(graph, Finite(), None)
    assert result.verdict is Verdict.VIOLATED
    assert result.stats["node"] == graph.nodes[0].name
    trace = float32_trace(graph, result.counterexample)
    assert not np.all(np.isfinite(trace[graph.nodes[0].name]))


def test_sigmoid_first_is_finite_for_every_input() -> None:
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["s"]),
        helper.make_node("Gemm", ["s", "w", "b"], ["y"], transB=1),
    ]
    w = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    graph = load(onnx_bytes(nodes, 2, 2, {"w": w, "b": np.zeros(2)}))
    result = prove(graph, Finite(), None)
    assert result.verdict is Verdict.HOLDS


def test_exp_overflow_is_found_and_named() -> None:
    nodes = [helper.make_node("Exp", ["x"], ["y"])]
    graph = load(onnx_bytes(nodes, 2, 2))
    assert prove(graph, Finite(), Box(np.zeros(2), np.full(2, 80.0))).holds
    result = prove(graph, Finite(), Box(np.zeros(2), np.full(2, 100.0)))
    assert result.verdict is Verdict.VIOLATED
    assert result.stats["node"] == "y"
    assert np.max(result.counterexample) > 88.72


def test_division_by_a_value_reaching_zero_is_not_finite() -> None:
    nodes = [
        helper.make_node("Sub", ["x", "c"], ["d"]),
        helper.make_node("Div", ["x", "d"], ["y"]),
    ]
    graph = load(onnx_bytes(nodes, 1, 1, {"c": np.array([0.5])}))
    result = prove(graph, Finite(), Box([0.0], [1.0]))
    assert result.verdict is not Verdict.HOLDS
    assert result.stats["node"] == "y"
    assert prove(graph, Finite(), Box([0.6], [1.0])).holds


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    width=st.floats(0.1, 30.0),
    act=st.sampled_from(["Exp", "Sigmoid", "Tanh", "Relu"]),
)
def test_holds_means_float32_traces_are_finite(seed: int, width: float, act: str) -> None:
    """Soundness by sampling: when Finite HOLDS, random points give finite float32 traces."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
        helper.make_node(act, ["h"], ["y"]),
    ]
    graph = load(onnx_bytes(nodes, 2, 3, {"w": w, "b": np.zeros(3)}))
    box = Box(np.full(2, -width), np.full(2, width))
    result = prove(graph, Finite(), box, random_samples=16, pgd_steps=5)
    points = rng.uniform(-width, width, size=(50, 2))
    points = np.concatenate([points, [box.lower, box.upper]])
    finite = all(
        all(np.all(np.isfinite(v)) for v in float32_trace(graph, p).values()) for p in points
    )
    if result.verdict is Verdict.HOLDS:
        assert finite
    if result.verdict is Verdict.VIOLATED:
        trace = float32_trace(graph, result.counterexample)
        assert not all(np.all(np.isfinite(v)) for v in trace.values())


def test_region_of_the_wrong_size_is_rejected() -> None:
    from prover.errors import RegionError

    with pytest.raises(RegionError):
        prove(log_softmax_model(), Finite(), Box(np.zeros(4), np.ones(4)))
