"""Shared proof of "minimum of f' over [l, u] is at an endpoint" for sigmoid and tanh."""

from __future__ import annotations

import sympy
import z3

from proofs.lemmas.base import LemmaResult, X, derivative_sign, run_checks, sympy_zero, z3_valid

ASSUMES = (
    "exp is increasing with exp(0) = 1 (so x <= 0 iff exp(-x) >= 1)",
    "a function with nonpositive derivative on [0, inf) is nonincreasing there",
)


def endpoint_minimum() -> tuple[bool, str]:
    """Z3: an even ``d``, nonincreasing in |x|, has ``d(x) >= min(d(l), d(u))`` on [l, u]."""
    d = z3.Function("d", z3.RealSort(), z3.RealSort())
    lo, u, x = z3.Reals("l u x")

    def mag(y):
        return z3.If(y >= 0, y, -y)

    def dec(a, b):  # instance of "|a| <= |b| -> d(a) >= d(b)"
        return z3.Implies(mag(a) <= mag(b), d(a) >= d(b))

    hyp = [lo <= x, x <= u, dec(x, lo), dec(x, u)]
    return z3_valid(hyp, d(x) >= z3.If(d(lo) < d(u), d(lo), d(u)))


def prove_slope(name: str, f: sympy.Expr, closed_form: sympy.Expr, sign: str) -> LemmaResult:
    """Checks: f' equals ``closed_form``; f' is even; f'' has ``sign`` on x >= 0; endpoint."""
    d1 = sympy.diff(f, X)
    checks = [
        ("f' closed form", lambda: sympy_zero(d1 - closed_form)),
        ("f' even", lambda: sympy_zero(d1.subs(X, -X) - d1)),
        ("f'' <= 0 on x >= 0", lambda: derivative_sign(f, 2, "x>=0", sign)),
        ("min of f' on [l, u] at an endpoint", endpoint_minimum),
    ]
    return run_checks(name, "sympy+z3", checks, ASSUMES)
