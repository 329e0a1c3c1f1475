"""Minimum slope of exp over an interval: ``exp'(x) >= exp(l)`` for ``x`` in ``[l, u]``.

Hence a slope ``a <= exp(l)`` satisfies ``exp' >= a`` on ``[l, u]``, the premise of
:mod:`proofs.lemmas.monotone_offset` used by the DeepZ exp parallelogram.

Machine-checked: ``exp' = exp`` and ``exp'' = exp > 0`` (SymPy), and with ``E`` an
uninterpreted function constrained by that monotonicity, ``a <= E(l), l <= x`` implies
``a <= E(x)`` (Z3).
"""

from __future__ import annotations

import sympy
import z3

from proofs.lemmas.base import LemmaResult, X, run_checks, sympy_sign, sympy_zero, z3_valid

NAME = "exp_slope"
ASSUMES = ("a function with positive derivative is increasing",)


def check(at_upper: bool = False) -> LemmaResult:
    """Prove it; ``at_upper`` claims the slope ``exp(u)`` instead (false, for tests)."""
    e = z3.Function("E", z3.RealSort(), z3.RealSort())
    lo, u, x, a = z3.Reals("l u x a")
    end = u if at_upper else lo
    monotone = [z3.Implies(p <= q, e(p) <= e(q)) for p, q in ((lo, x), (x, u), (lo, u))]
    checks = [
        ("exp' = exp", lambda: sympy_zero(sympy.diff(sympy.exp(X), X) - sympy.exp(X))),
        (
            "exp' increasing (exp'' > 0)",
            lambda: sympy_sign(sympy.diff(sympy.exp(X), X, 2), "positive"),
        ),
        ("slope", lambda: z3_valid([lo <= x, x <= u, a <= e(end), *monotone], a <= e(x))),
    ]
    return run_checks(NAME, "sympy+z3", checks, ASSUMES)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
