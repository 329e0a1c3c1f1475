"""ValidProbabilities(): Softmax identity (symbolic), replayed witnesses, honest UNKNOWN."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from prop_models import onnx_bytes, ort_run, random_mlp

from prover.api import load, prove
from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.properties import ValidProbabilities
from prover.properties.valid_probabilities import SUM_TOLERANCE
from prover.result import Verdict
from prover.spec import Box


def test_softmax_terminated_mlp_holds_over_a_box() -> None:
    graph, _ = random_mlp(0, (4, 8, 3), "Softmax")
    result = prove(graph, ValidProbabilities(), Box(-np.ones(4), np.ones(4)))
    assert result.verdict is Verdict.HOLDS, result.reason
    assert result.method == "symbolic"
    assert "finite over the region" in result.soundness


def test_softmax_terminated_mlp_holds_over_all_inputs_in_real_arithmetic() -> None:
    graph, _ = random_mlp(0, (4, 8, 3), "Softmax")
    result = prove(graph, ValidProbabilities(), None)
    assert result.verdict is Verdict.HOLDS, result.reason
    assert "real arithmetic" in result.soundness and "NOT" in result.soundness


def test_mlp_without_softmax_is_violated_with_a_replayed_witness() -> None:
    graph, data = random_mlp(2, (4, 8, 3), None, scale=2.0)
    box = Box(-np.ones(4), np.ones(4))
    result = prove(graph, ValidProbabilities(), box)
    assert result.verdict is Verdict.VIOLATED
    assert box.contains(result.counterexample)
    y = ort_run(data, result.counterexample)
    assert np.any(y < 0) or np.any(y > 1) or abs(y.sum() - 1) > SUM_TOLERANCE


def test_sigmoid_outputs_in_range_but_sum_off_one_are_violated() -> None:
    nodes = [helper.make_node("Sigmoid", ["x"], ["y"])]
    data = onnx_bytes(nodes, 3, 3)
    result = prove(load(data), ValidProbabilities(), Box(-np.ones(3), np.ones(3)))
    assert result.verdict is Verdict.VIOLATED
    y = ort_run(data, result.counterexample)
    assert np.all((y >= 0) & (y <= 1)) and abs(y.sum() - 1) > SUM_TOLERANCE


def test_softmax_over_part_of_the_output_sums_to_two() -> None:
    rng = np.random.default_rng(0)
    nodes = (
        Node("h", ops.Gemm(rng.normal(size=(6, 2)), np.zeros(6)), ("x",)),
        Node("r", ops.Reshape((2, 3)), ("h",)),
        Node("y", ops.Softmax(1), ("r",)),
    )
    graph = Graph((("x", (2,)),), nodes, "y")  # no ONNX origin: replayed on an export
    result = prove(graph, ValidProbabilities(), Box(-np.ones(2), np.ones(2)))
    assert result.verdict is Verdict.VIOLATED
    assert result.output.sum() == pytest.approx(2.0, abs=1e-5)


def test_log_before_softmax_does_not_hold_where_log_reaches_zero() -> None:
    nodes = [
        helper.make_node("Log", ["x"], ["l"]),
        helper.make_node("Softmax", ["l"], ["y"], axis=1),
    ]
    graph = load(onnx_bytes(nodes, 3, 3))
    result = prove(graph, ValidProbabilities(), Box(np.zeros(3), np.ones(3)))
    assert result.verdict is not Verdict.HOLDS
    over_all = prove(graph, ValidProbabilities(), None)
    assert over_all.verdict is not Verdict.HOLDS
    assert prove(graph, ValidProbabilities(), Box(np.full(3, 0.5), np.ones(3))).holds


def test_a_true_but_unprovable_sum_is_unknown_with_bounds() -> None:
    """y = (sigmoid(x), 1 - sigmoid(x)): valid, but bounds cannot pin the sum to 1."""
    nodes = (
        Node("s", ops.Sigmoid(), ("x",)),
        Node("n", ops.Neg(), ("s",)),
        Node("t", ops.AddConst(np.array([1.0])), ("n",)),
        Node("y", ops.Concat(0), ("s", "t")),
    )
    graph = Graph((("x", (1,)),), nodes, "y")
    result = prove(graph, ValidProbabilities(), Box([-2.0], [2.0]))
    assert result.verdict is Verdict.UNKNOWN
    lo, hi = result.bounds
    assert np.all(lo >= 0) and np.all(hi <= 1)
    assert "sum" in result.reason


def test_predicate_uses_the_stated_tolerance() -> None:
    prop = ValidProbabilities()
    assert not prop.violated_by([0.5, 0.5 + SUM_TOLERANCE / 2])
    assert prop.violated_by([0.5, 0.5 + 2 * SUM_TOLERANCE])
    assert prop.violated_by([1.5, -0.5])
    assert prop.violated_by([np.nan, 1.0])
