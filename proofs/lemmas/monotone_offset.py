"""Offsets of ``g(x) = f(x) - s x`` when ``f' >= s`` on ``[l, u]``.

If ``f'(x) >= s`` on ``[l, u]``, ``f_lo <= f(l)`` and ``f_hi >= f(u)``, then for every
``x`` in ``[l, u]``: ``f_lo - s l <= f(x) - s x <= f_hi - s u``.

Machine-checked: SymPy computes ``g' = f' - s`` for an arbitrary (undefined) function
``f``; Z3 proves the offset inequality from ``g(l) <= g(x) <= g(u)`` with ``f`` an
uninterpreted function and all quantities free reals.
"""

from __future__ import annotations

import sympy
import z3

from proofs.lemmas.base import LemmaResult, X, run_checks, z3_valid

NAME = "monotone_offset"
ASSUMES = ("mean value theorem: g' >= 0 on [l, u] implies g(l) <= g(x) <= g(u)",)


def check(swap_ends: bool = False) -> LemmaResult:
    """Prove it; ``swap_ends`` pairs the bounds with the wrong endpoints (tests)."""
    f = z3.Function("f", z3.RealSort(), z3.RealSort())
    lo, u, x, s, f_lo, f_hi = z3.Reals("l u x s f_lo f_hi")

    def g(y):
        return f(y) - s * y

    hyp = [lo <= x, x <= u, g(lo) <= g(x), g(x) <= g(u), f_lo <= f(lo), f_hi >= f(u)]
    lo_end, hi_end = (u, lo) if swap_ends else (lo, u)
    goal = z3.And(f_lo - s * lo_end <= g(x), g(x) <= f_hi - s * hi_end)

    def derivative():
        fs, slope = sympy.Function("f"), sympy.Symbol("s", real=True)
        d = sympy.diff(fs(X) - slope * X, X) - (sympy.diff(fs(X), X) - slope)
        return (d == 0, "SymPy: d/dx (f(x) - s x) = f'(x) - s")

    checks = [("g' = f' - s", derivative), ("offsets", lambda: z3_valid(hyp, goal))]
    return run_checks(NAME, "sympy+z3", checks, ASSUMES)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
