"""Shared proof of tangent/chord bounds from the sign of the second derivative."""

from __future__ import annotations

import sympy

from proofs.lemmas.base import LemmaResult, derivative_sign, run_checks

ASSUMES = (
    "exp is increasing with exp(0) = 1 (so x <= 0 iff exp(-x) >= 1)",
    "f'' >= 0 on an interval implies f lies below its chords and above its tangents there "
    "(f'' <= 0: the reverse)",
)


def prove_curvature(name: str, f: sympy.Expr, convex_on: str = "x<=0") -> LemmaResult:
    """f'' >= 0 on ``convex_on`` and <= 0 on the other half-line."""
    concave_on = "x>=0" if convex_on == "x<=0" else "x<=0"
    checks = [
        (f"f'' >= 0 on {convex_on} (convex)", lambda: derivative_sign(f, 2, convex_on, ">=0")),
        (f"f'' <= 0 on {concave_on} (concave)", lambda: derivative_sign(f, 2, concave_on, "<=0")),
    ]
    return run_checks(name, "sympy+z3", checks, ASSUMES)
