"""Lipschitz(bound, norm): certified constants, refuting pairs replayed on ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from prop_models import onnx_bytes, ort_run, random_mlp

from prover.api import load, prove
from prover.errors import PropertyError
from prover.properties import Lipschitz
from prover.properties.lipschitz import norm_of
from prover.result import Verdict
from prover.spec import Box, LinfBall

W = np.array([[1.0, -2.0, 3.0], [0.5, 0.25, -1.0]], dtype=np.float32)
# Hand-computed: row sums of |W| are 6 and 1.75; column sums 1.5, 2.25, 4.
W_INF, W_ONE = 6.0, 4.0


def linear_model():
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)]
    data = onnx_bytes(nodes, 3, 2, {"w": W, "b": np.array([0.1, -0.2])})
    return load(data), data


@pytest.mark.parametrize("region", [Box(-np.ones(3), np.ones(3)), None])
def test_linear_model_certifies_its_exact_inf_norm(region) -> None:
    graph, _ = linear_model()
    result = prove(graph, Lipschitz(W_INF * (1 + 1e-9)), region)
    assert result.verdict is Verdict.HOLDS
    assert W_INF <= result.value <= W_INF * (1 + 1e-12)
    assert prove(graph, Lipschitz(7.0), region).holds


def test_other_norms_bound_the_true_operator_norms() -> None:
    graph, _ = linear_model()
    box = Box(-np.ones(3), np.ones(3))
    one = prove(graph, Lipschitz(10.0, "1"), box)
    assert one.holds and W_ONE <= one.value <= W_ONE * (1 + 1e-12)
    two = prove(graph, Lipschitz(10.0, "2"), box)
    assert two.holds and np.linalg.norm(W.astype(np.float64), 2) <= two.value
    assert two.value <= np.linalg.norm(np.abs(W.astype(np.float64)), "fro") * (1 + 1e-12)


def test_bound_well_below_is_violated_with_a_real_pair() -> None:
    graph, data = linear_model()
    box = Box(-np.ones(3), np.ones(3))
    result = prove(graph, Lipschitz(3.0), box)
    assert result.verdict is Verdict.VIOLATED
    a, b = result.stats["pair"]
    assert box.contains(a) and box.contains(b)
    ratio = norm_of(ort_run(data, b) - ort_run(data, a), "inf") / norm_of(b - a, "inf")
    assert ratio > 3.0
    exact = norm_of(W.astype(np.float64) @ (b - a), "inf") / norm_of(b - a, "inf")
    assert exact > 3.0
    assert result.value >= W_INF


def test_certified_constant_bounds_secant_ratios_of_a_relu_mlp() -> None:
    graph, data = random_mlp(3, (4, 8, 3))
    region = LinfBall(np.zeros(4), 0.5)
    value = prove(graph, Lipschitz(1e6), region).value
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = rng.uniform(-0.5, 0.5, size=(2, 4))
        from prover.api import evaluate

        ratio = norm_of(evaluate(graph, b) - evaluate(graph, a), "inf") / norm_of(b - a, "inf")
        assert ratio <= value * (1 + 1e-9)


def test_unknown_between_observed_and_certified_carries_the_value() -> None:
    graph, _ = random_mlp(5, (2, 16, 16, 1))
    box = Box(-np.ones(2), np.ones(2))
    certified = prove(graph, Lipschitz(1e9), box).value
    result = prove(graph, Lipschitz(certified * (1 - 1e-6)), box)
    assert result.verdict is not Verdict.HOLDS
    assert result.value == pytest.approx(certified)


@pytest.mark.parametrize(
    "bad", [dict(bound=-1.0), dict(bound=float("nan")), dict(bound=1.0, norm="3"), dict(bound="x")]
)
def test_bad_arguments_are_property_errors(bad) -> None:
    with pytest.raises(PropertyError):
        Lipschitz(**bad)
