"""Offsets of ``g(x) = leaky(x) - s x`` over an interval (``domains.relaxations``).

For all reals ``l <= u``, slope ``s``, leak ``alpha`` and ``x`` in ``[l, u]``, with
``c = min(max(0, l), u)`` (0 clamped into the interval)::

    min(g(l), g(u), g(c)) <= g(x) <= max(g(l), g(u), g(c))

(``g`` is linear on each side of the kink 0, so its extremes are at ``l``, ``u`` or the
kink). Proved by Z3 with every quantity a free real (ReLU is ``alpha = 0``).
"""

from __future__ import annotations

import z3

from proofs.lemmas.base import LemmaResult, leaky, run_checks, z3_valid

NAME = "piecewise_linear_offset"


def check(use_kink: bool = True) -> LemmaResult:
    """Prove the statement; without the kink candidate it is false (tests use this)."""
    lb, u, x, s, a = z3.Reals("l u x s alpha")
    c = z3.If(z3.If(lb > 0, lb, 0) < u, z3.If(lb > 0, lb, 0), u)

    def g(y):
        return leaky(y, a) - s * y

    points = [g(lb), g(u)] + ([g(c)] if use_kink else [])
    lo, hi = points[0], points[0]
    for p in points[1:]:
        lo, hi = z3.If(p < lo, p, lo), z3.If(p > hi, p, hi)
    hyp = [lb <= x, x <= u]
    checks = [
        ("lower offset", lambda: z3_valid(hyp, lo <= g(x))),
        ("upper offset", lambda: z3_valid(hyp, g(x) <= hi)),
    ]
    return run_checks(NAME, "z3", checks)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
