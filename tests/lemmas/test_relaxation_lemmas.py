"""Every relaxation lemma is machine-proved, and wrong variants are not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

from proofs.lemmas import (
    LEMMAS,
    exp_convex,
    exp_slope,
    leaky_relu,
    log_concave,
    monotone_offset,
    piecewise_linear_offset,
    prove_all,
    relu_deepz,
    relu_triangle,
    sigmoid_slope,
    sigmoid_tangent_chord,
    softmax_interval,
)
from proofs.lemmas.base import LemmaResult


@pytest.mark.parametrize("name", sorted(LEMMAS))
def test_lemma_is_proved(name):
    module = LEMMAS[name]
    assert module.NAME == name
    assert module.__doc__ and len(module.__doc__) > 40
    result = module.prove()
    assert isinstance(result, LemmaResult)
    assert result.name == name
    assert result.holds, result.detail
    assert result.engine in ("z3", "sympy", "sympy+z3")


def test_prove_all_covers_the_registry():
    results = prove_all()
    assert set(results) == set(LEMMAS)
    assert all(r.holds for r in results.values())


def test_every_lemma_named_by_the_domains_is_registered():
    from domains import relaxations
    from domains.linear import relax

    for table in (relaxations.LEMMAS, relax.LEMMAS):
        missing = set(table) - set(LEMMAS)
        assert not missing, f"relaxations name lemmas without a proof: {sorted(missing)}"


WRONG = [
    ("relu upper chord lowered by 0.01", lambda: relu_triangle.check(upper_shift=-0.01)),
    ("relu lower slope up to 1.5", lambda: relu_triangle.check(alpha_max=1.5)),
    ("DeepZ band 10% too thin", lambda: relu_deepz.check(mu_scale=0.9)),
    ("leaky slope above 1", lambda: leaky_relu.check(alpha_max=2.0)),
    ("offset without the kink", lambda: piecewise_linear_offset.check(use_kink=False)),
    ("offset at the wrong ends", lambda: monotone_offset.check(swap_ends=True)),
    ("slope at the upper end", lambda: exp_slope.check(at_upper=True)),
    ("softmax bound with swapped sums", lambda: softmax_interval.check(swap=True)),
]


@pytest.mark.parametrize(("what", "attempt"), WRONG, ids=[w for w, _ in WRONG])
def test_wrong_z3_relaxation_is_refuted(what, attempt):
    result = attempt()
    assert not result.holds, what
    assert "counterexample" in result.detail


WRONG_CALCULUS = [
    ("sigmoid' increasing on x >= 0", lambda: sigmoid_slope.prove(sign=">=0")),
    ("sigmoid convex on x >= 0", lambda: sigmoid_tangent_chord.prove(convex_on="x>=0")),
    (
        "exp tangent offset too high",
        lambda: exp_convex.check(offset=lambda a: a * (2 - sympy.log(a))),
    ),
    ("log tangent offset too low", lambda: log_concave.check(offset=lambda a: -sympy.log(a) - 2)),
]


@pytest.mark.parametrize(("what", "attempt"), WRONG_CALCULUS, ids=[w for w, _ in WRONG_CALCULUS])
def test_wrong_calculus_relaxation_is_not_proved(what, attempt):
    result = attempt()
    assert not result.holds, what
    assert result.detail.startswith("FAILED")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_proved_statements_agree_with_sampling():
    """The inequalities the lemmas state hold at random points (independent check)."""
    rng = np.random.default_rng(0)
    lb = -rng.exponential(2.0, 2000)
    ub = rng.exponential(2.0, 2000)
    x = lb + (ub - lb) * rng.random(2000)
    relu = np.maximum(x, 0)
    lam = ub / (ub - lb)
    mu = -lam * lb / 2
    assert np.all(relu <= ub * (x - lb) / (ub - lb) + 1e-12)
    assert np.all(lam * x - 1e-12 <= relu) and np.all(relu <= lam * x + 2 * mu + 1e-12)
    # sigmoid chord above on x <= 0, below on x >= 0
    a, b = -rng.exponential(3.0, 2000), -rng.exponential(3.0, 2000)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    t = lo + (hi - lo) * rng.random(2000)
    width = np.where(hi > lo, hi - lo, 1.0)
    chord = _sigmoid(lo) + (_sigmoid(hi) - _sigmoid(lo)) * (t - lo) / width
    assert np.all(_sigmoid(t) <= chord + 1e-12)
    assert np.all(_sigmoid(-t) >= 1 - chord - 1e-12)
    # exp tangent-type lower line
    slope = rng.exponential(3.0, 2000)
    z = rng.normal(0, 3, 2000)
    assert np.all(np.exp(z) >= slope * z + slope * (1 - np.log(slope)) - 1e-9 * np.exp(z))
    # softmax interval
    for _ in range(200):
        n = 4
        bl = rng.normal(0, 2, n)
        bu = bl + rng.exponential(1.0, n)
        xs = bl + (bu - bl) * rng.random(n)
        s = np.exp(xs) / np.exp(xs).sum()
        for i in range(n):
            others_u = sum(math.exp(bu[j]) for j in range(n) if j != i)
            others_l = sum(math.exp(bl[j]) for j in range(n) if j != i)
            assert math.exp(bl[i]) / (math.exp(bl[i]) + others_u) <= s[i] + 1e-12
            assert s[i] <= math.exp(bu[i]) / (math.exp(bu[i]) + others_l) + 1e-12
