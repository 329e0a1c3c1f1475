"""Shared proof of interval rules for increasing functions."""

from __future__ import annotations

import sympy
import z3

from proofs.lemmas.base import LemmaResult, run_checks, sympy_sign, z3_valid

ASSUMES = ("a function with positive derivative on an interval is increasing there",)


def prove_monotone(name: str, f: sympy.Expr, x: sympy.Symbol, derivative_kind: str) -> LemmaResult:
    """f' has ``derivative_kind`` sign (SymPy); then f(l) <= f(x) <= f(u) (Z3, f as UF)."""
    g = z3.Function("f", z3.RealSort(), z3.RealSort())
    lo, u, y = z3.Reals("l u x")
    inc = [z3.Implies(p <= q, g(p) <= g(q)) for p, q in ((lo, y), (y, u))]
    checks = [
        (f"f' is {derivative_kind}", lambda: sympy_sign(sympy.diff(f, x), derivative_kind)),
        (
            "interval rule",
            lambda: z3_valid([lo <= y, y <= u, *inc], z3.And(g(lo) <= g(y), g(y) <= g(u))),
        ),
    ]
    return run_checks(name, "sympy+z3", checks, ASSUMES)
