"""Hand-computed bounds on tiny networks, correlation, NaN handling and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from domains import get_domain
from domains.zonotope.api import propagate as propagate_zonotope
from prover.errors import RegionError, ShapeError
from prover.ir import ops
from prover.ir.graph import Graph, Node

INTERVAL = get_domain("interval")
ZONOTOPE = get_domain("zonotope")
TOL = 1e-12


def box(lo, hi):
    lo = torch.tensor(lo, dtype=torch.float64)
    hi = torch.tensor(hi, dtype=torch.float64)
    return lo.unsqueeze(0), hi.unsqueeze(0)


def graph(n, *nodes):
    return Graph((("x", (n,)),), tuple(nodes), nodes[-1].name)


def assert_outward(bound, exact_lo, exact_hi):
    """``bound`` = (lo, hi) encloses [exact_lo, exact_hi] and is within TOL of it."""
    lo, hi = (b.reshape(-1).tolist() for b in bound)
    for got, want in zip(lo, np.broadcast_to(exact_lo, len(lo)), strict=True):
        assert want - TOL <= got <= want
    for got, want in zip(hi, np.broadcast_to(exact_hi, len(hi)), strict=True):
        assert want <= got <= want + TOL


DIFF = ops.Gemm(np.array([[1.0, -1.0]]), np.zeros(1))
RELU_DIFF = graph(2, Node("d", DIFF, ("x",)), Node("y", ops.Relu(), ("d",)))


def test_relu_of_difference_interval():
    # x in [-1, 1]^2, y = relu(x1 - x2): x1 - x2 in [-2, 2], relu in [0, 2].
    assert_outward(INTERVAL.bound_outputs(RELU_DIFF, *box([-1, -1], [1, 1])), 0.0, 2.0)


def test_relu_of_difference_zonotope():
    # DeepZ: lambda = 2/4, mu = 2 * 2 / (2 * 4) = 0.5, y = 0.5 d + 0.5 + 0.5 e: [-1, 2].
    z = propagate_zonotope(RELU_DIFF, *box([-1, -1], [1, 1]), interval_hints=False)
    assert_outward(z.bounds(), -1.0, 2.0)
    # With the interval hints (the default), the intersection [0, 2].
    assert_outward(ZONOTOPE.bound_outputs(RELU_DIFF, *box([-1, -1], [1, 1])), 0.0, 2.0)


def test_zonotope_never_looser_than_interval():
    rng = np.random.default_rng(3)
    net = graph(
        4,
        Node("h", ops.Gemm(rng.normal(size=(6, 4)), rng.normal(size=6)), ("x",)),
        Node("r", ops.Relu(), ("h",)),
        Node("h2", ops.Gemm(rng.normal(size=(6, 6)), rng.normal(size=6)), ("r",)),
        Node("r2", ops.Sigmoid(), ("h2",)),
        Node("y", ops.Gemm(rng.normal(size=(3, 6)), rng.normal(size=3)), ("r2",)),
    )
    lower = torch.from_numpy(rng.uniform(-1, 0, size=(8, 4)))
    upper = lower + torch.from_numpy(rng.uniform(0, 2, size=(8, 4)))
    zlo, zhi = ZONOTOPE.bound_outputs(net, lower, upper)
    ilo, ihi = INTERVAL.bound_outputs(net, lower, upper)
    assert (zlo >= ilo).all() and (zhi <= ihi).all()
    plain = propagate_zonotope(net, lower, upper, interval_hints=False).bounds()
    assert (zhi - zlo <= plain[1] - plain[0]).all()
    C = torch.from_numpy(rng.normal(size=(4, 3)))
    zlin = ZONOTOPE.bound_linear(net, lower, upper, C)
    assert (zlin >= INTERVAL.bound_linear(net, lower, upper, C)).all()


def test_stable_relu_is_exact():
    # x1 - x2 in [1, 3] on this box: the ReLU is the identity.
    for domain in (INTERVAL, ZONOTOPE):
        assert_outward(domain.bound_outputs(RELU_DIFF, *box([2, 0], [3, 1])), 1.0, 3.0)


def test_zonotope_exact_on_affine_nets():
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(5, 3)), rng.normal(size=5)
    w2, b2 = rng.normal(size=(2, 5)), rng.normal(size=2)
    net = graph(3, Node("h", ops.Gemm(w1, b1), ("x",)), Node("y", ops.Gemm(w2, b2), ("h",)))
    lo, hi = np.array([-1.0, 0.0, 0.5]), np.array([1.0, 0.5, 2.0])
    c, r = (lo + hi) / 2, (hi - lo) / 2
    w, b = w2 @ w1, w2 @ b1 + b2
    exact_lo, exact_hi = w @ c + b - np.abs(w) @ r, w @ c + b + np.abs(w) @ r
    assert_outward(ZONOTOPE.bound_outputs(net, *box(lo, hi)), exact_lo, exact_hi)
    ilo, ihi = INTERVAL.bound_outputs(net, *box(lo, hi))
    assert (ihi - ilo > torch.from_numpy(exact_hi - exact_lo) + 1e-6).any()
    # The same net behind a Reshape from (3, 1) (the input generators' fast path).
    reshaped = Graph(
        (("x", (3, 1)),),
        (Node("f", ops.Reshape((3,)), ("x",)),)
        + tuple(Node(n.name, n.op, ("f",) if n.inputs == ("x",) else n.inputs) for n in net.nodes),
        "y",
    )
    lower, upper = box(lo, hi)
    bounds = ZONOTOPE.bound_outputs(reshaped, lower.reshape(1, 3, 1), upper.reshape(1, 3, 1))
    assert_outward(bounds, exact_lo, exact_hi)
    C = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    d = w[0] - w[1]
    exact = d @ c + b[0] - b[1] - np.abs(d) @ r
    got = float(ZONOTOPE.bound_linear(net, *box(lo, hi), C)[0, 0])
    assert exact - TOL <= got <= exact


def test_residual_correlation_is_kept():
    # y = relu(W x) - relu(W x): exactly 0 in the zonotope (same fresh symbols).
    w = ops.Gemm(np.array([[1.0, 2.0], [-1.0, 1.0]]), np.array([0.5, 0.0]))
    net = graph(
        2,
        Node("h", w, ("x",)),
        Node("r", ops.Relu(), ("h",)),
        Node("s", ops.Sigmoid(), ("r",)),
        Node("y", ops.Sub(), ("s", "s")),
    )
    lo, hi = ZONOTOPE.bound_outputs(net, *box([-1, -1], [1, 1]))
    assert float(hi.abs().max()) < 1e-12 and float(lo.abs().max()) < 1e-12
    ilo, ihi = INTERVAL.bound_outputs(net, *box([-1, -1], [1, 1]))
    assert float(ihi.min()) > 0.1


def test_parallel_branches_do_not_share_symbols():
    # a = relu(x), b = relu(-x): their fresh symbols differ; a + b = |x| in [0, 1].
    net = graph(
        1,
        Node("a", ops.Relu(), ("x",)),
        Node("n", ops.Neg(), ("x",)),
        Node("b", ops.Relu(), ("n",)),
        Node("y", ops.Add(), ("a", "b")),
    )
    lo, hi = ZONOTOPE.bound_outputs(net, *box([-1], [1]))
    # a = 0.5 x + 0.25 + 0.25 e1, b = -0.5 x + 0.25 + 0.25 e2: a + b = 0.5 + 0.25 (e1 + e2).
    assert_outward((lo, hi), 0.0, 1.0)


def test_softmax_of_equal_logits():
    net = graph(3, Node("y", ops.Softmax(0), ("x",)))
    for domain in (INTERVAL, ZONOTOPE):
        assert_outward(
            domain.bound_outputs(net, *box([0.0] * 3, [0.0] * 3)), [1 / 3] * 3, [1 / 3] * 3
        )
    # x in [0, log 2] x {0}: softmax_0 in [1/2, 2/3].
    net = graph(2, Node("y", ops.Softmax(0), ("x",)))
    lo, hi = INTERVAL.bound_outputs(net, *box([0.0, 0.0], [math.log(2), 0.0]))
    assert_outward((lo[:, :1], hi[:, :1]), 0.5, 2 / 3)


def test_division_by_interval_containing_zero_is_unbounded():
    net = Graph(
        (("x", (2,)),),
        (
            Node("a", ops.Slice((0,), (0,), (1,), (1,)), ("x",)),
            Node("b", ops.Slice((0,), (1,), (2,), (1,)), ("x",)),
            Node("y", ops.Div(), ("a", "b")),
        ),
        "y",
    )
    for domain in (INTERVAL, ZONOTOPE):
        lo, hi = domain.bound_outputs(net, *box([1.0, -1.0], [2.0, 1.0]))
        assert not math.isfinite(float(lo)) and not math.isfinite(float(hi))
        lo, hi = domain.bound_outputs(net, *box([1.0, 2.0], [2.0, 4.0]))
        assert_outward((lo, hi), 0.25, 1.0) if domain is INTERVAL else None
        assert float(lo) <= 0.25 and float(hi) >= 1.0


def test_nan_is_never_lost_downstream():
    # log of a negative number is NaN; relu and clip must not turn it into a bound.
    net = graph(
        1,
        Node("l", ops.Log(), ("x",)),
        Node("r", ops.Relu(), ("l",)),
        Node("y", ops.Clip(0.0, 1.0), ("r",)),
    )
    for domain in (INTERVAL, ZONOTOPE):
        lo, hi = domain.bound_outputs(net, *box([-2.0], [-1.0]))
        assert not (math.isfinite(float(lo)) and math.isfinite(float(hi)))
        C = torch.ones((1, 1), dtype=torch.float64)
        assert not math.isfinite(float(domain.bound_linear(net, *box([-2.0], [-1.0]), C)))


def test_log_reaching_zero_has_infinite_lower_bound():
    net = graph(1, Node("y", ops.Log(), ("x",)))
    lo, hi = INTERVAL.bound_outputs(net, *box([0.0], [1.0]))
    assert float(lo) == -math.inf and 0.0 <= float(hi) < 1e-12


def test_batch_rows_are_independent():
    rng = np.random.default_rng(1)
    net = graph(
        3,
        Node("h", ops.Gemm(rng.normal(size=(4, 3)), rng.normal(size=4)), ("x",)),
        Node("r", ops.Relu(), ("h",)),
        Node("y", ops.Gemm(rng.normal(size=(2, 4)), rng.normal(size=2)), ("r",)),
    )
    lower = torch.from_numpy(rng.uniform(-1, 0, size=(5, 3)))
    upper = lower + torch.from_numpy(rng.uniform(0, 1, size=(5, 3)))
    C = torch.from_numpy(rng.normal(size=(3, 2)))
    for domain in (INTERVAL, ZONOTOPE):
        lo, hi = domain.bound_outputs(net, lower, upper)
        lin = domain.bound_linear(net, lower, upper, C)
        batched_C = domain.bound_linear(net, lower, upper, C.expand(5, 3, 2))
        torch.testing.assert_close(lin, batched_C, rtol=0, atol=1e-12)
        for b in range(5):
            lo1, hi1 = domain.bound_outputs(net, lower[b : b + 1], upper[b : b + 1])
            torch.testing.assert_close(lo[b : b + 1], lo1, rtol=0, atol=1e-12)
            torch.testing.assert_close(hi[b : b + 1], hi1, rtol=0, atol=1e-12)


def test_bad_boxes_are_rejected():
    for domain in (INTERVAL, ZONOTOPE):
        with pytest.raises(ShapeError):
            domain.bound_outputs(RELU_DIFF, *box([0, 0, 0], [1, 1, 1]))
        with pytest.raises(RegionError):
            domain.bound_outputs(RELU_DIFF, *box([1, 0], [0, 1]))
        with pytest.raises(RegionError):
            lower, upper = box([0, 0], [1, 1])
            domain.bound_outputs(RELU_DIFF, lower.float(), upper.float())
