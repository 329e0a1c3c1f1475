"""Monotonic(input, output, increasing): Jacobian-sign proofs and replayed breaking pairs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from prop_models import onnx_bytes, ort_run

from prover.api import load, prove
from prover.errors import PropertyError
from prover.properties import Monotonic
from prover.result import Verdict
from prover.spec import Box


def relu_plus_half():
    """y = relu(x0) + 0.5 x1."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Gemm", ["r", "w1", "z"], ["p"], transB=1),
        helper.make_node("Gemm", ["x", "w2", "z"], ["q"], transB=1),
        helper.make_node("Add", ["p", "q"], ["y"]),
    ]
    inits = {"w1": [[1.0, 0.0]], "w2": [[0.0, 0.5]], "z": [0.0]}
    data = onnx_bytes(nodes, 2, 1, inits)
    return load(data), data


def negation():
    data = onnx_bytes([helper.make_node("Neg", ["x"], ["y"])], 1, 1)
    return load(data), data


@pytest.mark.parametrize("region", [Box(-np.ones(2), np.ones(2)), None])
def test_relu_plus_linear_is_increasing_in_both_inputs(region) -> None:
    graph, _ = relu_plus_half()
    first = prove(graph, Monotonic(input=0, output=0), region)
    assert first.verdict is Verdict.HOLDS
    assert first.value == 0.0  # the kink: derivative in [0, 1], lower bound exactly 0
    second = prove(graph, Monotonic(input=1, output=0), region)
    assert second.verdict is Verdict.HOLDS
    assert second.value == pytest.approx(0.5)


def test_relu_plus_linear_is_not_decreasing_in_x0() -> None:
    graph, data = relu_plus_half()
    box = Box(-np.ones(2), np.ones(2))
    result = prove(graph, Monotonic(0, 0, increasing=False), box)
    assert result.verdict is Verdict.VIOLATED
    a, b = result.stats["pair"]
    assert b[0] > a[0] and b[1] == a[1]
    assert ort_run(data, b)[0] > ort_run(data, a)[0]


def test_negation_is_not_increasing_and_the_pair_replays() -> None:
    graph, data = negation()
    box = Box([-1.0], [1.0])
    result = prove(graph, Monotonic(0, 0), box)
    assert result.verdict is Verdict.VIOLATED
    a, b = result.stats["pair"]
    assert box.contains(a) and box.contains(b) and b[0] > a[0]
    assert ort_run(data, b)[0] < ort_run(data, a)[0]
    assert prove(graph, Monotonic(0, 0, increasing=False), box).holds


def test_strictly_positive_region_of_relu_is_exact() -> None:
    graph, _ = relu_plus_half()
    result = prove(graph, Monotonic(0, 0), Box([0.5, -1.0], [1.0, 1.0]))
    assert result.holds and result.value == pytest.approx(1.0)


@pytest.mark.parametrize("prop", [Monotonic(2, 0), Monotonic(0, 1), Monotonic(-1, 0)])
def test_indices_out_of_range_are_property_errors(prop) -> None:
    graph, _ = relu_plus_half()
    with pytest.raises(PropertyError):
        prove(graph, prop, None)
