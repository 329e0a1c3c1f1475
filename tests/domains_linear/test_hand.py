"""Hand-computed bounds of the linear domain."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from domains import get_domain
from domains.linear.api import bound_outputs, linear_bounds
from prover.ir import ops
from prover.ir.graph import Graph, Node


def _relu_difference():
    """y = relu(x1) - relu(x2)."""
    nodes = (
        Node("a", ops.Gemm(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)), ("x",)),
        Node("r", ops.Relu(), ("a",)),
        Node("y", ops.Gemm(np.array([[1.0, -1.0]]), np.zeros(1)), ("r",)),
    )
    return Graph((("x", (2,)),), nodes, "y")


def test_relu_difference_over_the_square():
    # relu(x1) >= 0 * x1 (u = -l: slope 0), relu(x2) <= x2/2 + 1/2 <= 1: y >= -1, and
    # symmetrically y <= 1. Both are the exact extremes.
    g = _relu_difference()
    lo, hi = bound_outputs(
        g, -torch.ones(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    )
    assert lo.item() <= -1.0 and lo.item() == pytest.approx(-1.0, abs=1e-12)
    assert hi.item() >= 1.0 and hi.item() == pytest.approx(1.0, abs=1e-12)


def test_two_two_one_net_where_crown_is_exact():
    # x in [1,2]^2; h1 = relu(x1 + x2) in [2,4], h2 = relu(x1 - x2 + 3) in [2,4], both active;
    # y = h1 - h2 = 2 x2 - 3 in [-1, 1]. Intervals give [-2, 2]; back-substitution is exact.
    nodes = (
        Node("a", ops.Gemm(np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([0.0, 3.0])), ("x",)),
        Node("r", ops.Relu(), ("a",)),
        Node("y", ops.Gemm(np.array([[1.0, -1.0]]), np.zeros(1)), ("r",)),
    )
    g = Graph((("x", (2,)),), nodes, "y")
    lo, hi = bound_outputs(
        g, torch.ones(1, 2, dtype=torch.float64), 2 * torch.ones(1, 2, dtype=torch.float64)
    )
    assert lo.item() == pytest.approx(-1.0, abs=1e-12) and lo.item() <= -1.0
    assert hi.item() == pytest.approx(1.0, abs=1e-12) and hi.item() >= 1.0


def test_unstable_neuron_triangle_upper_bound():
    # y = relu(x) over [-1, 3]: upper line 3/4 (x + 1), max 3 at x = 3; lower slope 1 (u > -l)
    # gives y >= x >= -1, clipped to 0 by the interval box.
    g = Graph((("x", (1,)),), (Node("y", ops.Relu(), ("x",)),), "y")
    lo, hi = bound_outputs(g, torch.tensor([[-1.0]]), torch.tensor([[3.0]]))
    assert lo.item() == pytest.approx(0.0, abs=1e-12) and lo.item() <= 0.0
    assert hi.item() == pytest.approx(3.0, abs=1e-12) and hi.item() >= 3.0
    # linear_bounds is the pure back-substitution: y >= x >= -1 (lower slope 1).
    r = linear_bounds(g, torch.tensor([[-1.0]]), torch.tensor([[3.0]]), torch.tensor([[1.0]]))
    assert r.lower.item() == pytest.approx(-1.0, abs=1e-12) and r.lower.item() <= -1.0


def test_split_constraints_by_hand():
    g = _relu_difference()
    lo, hi = -torch.ones(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    C = torch.tensor([[1.0], [-1.0]])
    # x1 inactive, x2 active: y = -x2 exactly on the region. Back-substitution (without
    # beta multipliers) concretises -x2 over the whole box x2 in [-1, 1]: y in [-1, 1].
    split = {"a": torch.tensor([[-1, 1]], dtype=torch.int8)}
    r = linear_bounds(g, lo, hi, C, splits=split)
    assert r.lower[0, 0].item() == pytest.approx(-1.0, abs=1e-12)
    assert -r.lower[0, 1].item() == pytest.approx(1.0, abs=1e-12)
    assert not r.infeasible.any()
    # beta-CROWN: -y >= x2 - beta x2 (beta >= 0 multiplies x2 >= 0); beta = 1 gives y <= 0.
    r = linear_bounds(g, lo, hi, C, splits=split, alpha_steps=40, beta=True)
    assert -1e-6 < -r.lower[0, 1].item() <= 1e-6 and r.betas["a"].shape == (1, 2, 2)
    assert r.lower[0, 0].item() == pytest.approx(-1.0, abs=1e-12)
    # Both inactive: y = 0 on the region.
    r = linear_bounds(g, lo, hi, C, splits={"a": torch.tensor([[-1, -1]], dtype=torch.int8)})
    assert r.lower[0, 0].item() == pytest.approx(0.0, abs=1e-12) and r.lower[0, 0] <= 0
    assert -r.lower[0, 1].item() == pytest.approx(0.0, abs=1e-12) and r.lower[0, 1] <= 0
    # Without splits the same rows give [-1, 1] (relu(x1) >= 0, relu(x2) <= x2/2 + 1/2).
    r = linear_bounds(g, lo, hi, C)
    assert r.lower[0].tolist() == pytest.approx([-1.0, -1.0], abs=1e-12)
    # A split that contradicts the box: x1 in [0.5, 1] forced inactive.
    r = linear_bounds(
        g,
        torch.tensor([[0.5, -1.0]]),
        hi,
        C,
        splits={"a": torch.tensor([[-1, 0]], dtype=torch.int8)},
    )
    assert r.infeasible.tolist() == [True]
    assert torch.isinf(r.lower).all() and (r.lower > 0).all()


def _exact_mlp(weights, biases, x):
    """Exact rational evaluation of a ReLU MLP on float weights."""
    v = [Fraction(float(t)) for t in x]
    for i, (w, b) in enumerate(zip(weights, biases, strict=False)):
        v = [
            sum((Fraction(float(w[j, k])) * v[k] for k in range(len(v))), Fraction(float(b[j])))
            for j in range(w.shape[0])
        ]
        if i < len(weights) - 1:
            v = [max(t, Fraction(0)) for t in v]
    return v


@pytest.mark.parametrize("seed", range(6))
def test_point_boxes_contain_the_exact_real_value(seed):
    # On a degenerate box the bounds are the computed value up to rounding; without the
    # error widening they would sit on the wrong side of the exact value about half the time.
    rng = np.random.default_rng(seed)
    widths = [4, 8, 8, 3]
    weights = [rng.normal(size=(b, a)) * 3 for a, b in zip(widths[:-1], widths[1:], strict=False)]
    biases = [rng.normal(size=b) for b in widths[1:]]
    layers = []
    for i, (w, b) in enumerate(zip(weights, biases, strict=False)):
        layers.append(Node(f"g{i}", ops.Gemm(w, b), (f"r{i - 1}" if i else "x",)))
        if i < len(weights) - 1:
            layers.append(Node(f"r{i}", ops.Relu(), (f"g{i}",)))
    g = Graph((("x", (4,)),), tuple(layers), f"g{len(weights) - 1}")
    x = torch.tensor(rng.normal(size=(1, 4)))
    exact = _exact_mlp(weights, biases, x[0].tolist())
    for name in ("deeppoly", "crown", "alpha-crown"):
        lo, hi = get_domain(name).bound_outputs(g, x, x)
        for j, value in enumerate(exact):
            assert Fraction(lo[0, j].item()) <= value <= Fraction(hi[0, j].item())
            assert hi[0, j].item() - lo[0, j].item() < 1e-9 * (1 + abs(float(value)))


def test_relu_output_coefficients_are_those_of_the_last_layer():
    # y = relu(x1) - relu(x2) with C = [[2], [-3]]: the coefficients of the ReLU output in
    # the bound of row r are C[r] * [1, -1], whatever the box.
    g = _relu_difference()
    C = np.array([[2.0], [-3.0]])
    r = linear_bounds(
        g,
        -torch.ones(2, 2, dtype=torch.float64),
        torch.ones(2, 2, dtype=torch.float64),
        C,
        return_coefficients=True,
    )
    lam = r.relu_coefficients["a"]
    assert lam.shape == (2, 2, 2)
    expected = torch.tensor([[2.0, -2.0], [-3.0, 3.0]], dtype=torch.float64)
    assert torch.equal(lam[0], expected) and torch.equal(lam[1], expected)
    plain = linear_bounds(g, -torch.ones(2, 2), torch.ones(2, 2), C)
    assert plain.relu_coefficients == {}  # only recorded with return_coefficients
