"""The floating-point error bounds of domains.rounding, checked in exact rationals."""

from __future__ import annotations

from fractions import Fraction

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from domains.rounding import center_radius, dot_error, down, linear_lower_bound, up

FLOATS = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
SMALL = st.floats(-1e-300, 1e-300, allow_nan=False)
VALUES = st.one_of(FLOATS, SMALL)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(VALUES, VALUES), min_size=1, max_size=40))
def test_dot_error_bounds_the_exact_error(pairs):
    a, b = t([p[0] for p in pairs]), t([p[1] for p in pairs])
    computed = float(a @ b)
    exact = sum(Fraction(x) * Fraction(y) for x, y in pairs)
    bound = dot_error((a.abs() @ b.abs()).reshape(1), len(pairs))
    assert abs(Fraction(computed) - exact) <= Fraction(float(bound[0]))


@settings(max_examples=60, deadline=None)
@given(VALUES, VALUES)
def test_up_and_down_bracket_each_operation(x, y):
    for op, exact in (
        (lambda p, q: p + q, Fraction(x) + Fraction(y)),
        (lambda p, q: p - q, Fraction(x) - Fraction(y)),
        (lambda p, q: p * q, Fraction(x) * Fraction(y)),
    ):
        value = op(t([x]), t([y]))
        assert Fraction(float(down(value)[0])) <= exact <= Fraction(float(up(value)[0]))


@settings(max_examples=60, deadline=None)
@given(FLOATS, FLOATS)
def test_center_radius_contains_the_interval(x, y):
    lo, hi = min(x, y), max(x, y)
    c, r = center_radius(t([lo]), t([hi]))
    c, r = Fraction(float(c[0])), Fraction(float(r[0]))
    assert c - r <= Fraction(lo) and Fraction(hi) <= c + r


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(FLOATS, FLOATS, FLOATS), min_size=1, max_size=12))
def test_linear_lower_bound_is_below_every_corner(rows):
    C = t([[r[0] for r in rows]])
    lo = t([[min(r[1], r[2]) for r in rows]])
    hi = t([[max(r[1], r[2]) for r in rows]])
    c, r = center_radius(lo, hi)
    bound = Fraction(float(linear_lower_bound(C, c, r)[0, 0]))
    exact_min = sum(
        Fraction(w) * Fraction(a if w >= 0 else b)
        for w, a, b in zip(C[0].tolist(), lo[0].tolist(), hi[0].tolist(), strict=True)
    )
    assert bound <= exact_min
