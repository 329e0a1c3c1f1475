"""Leaky ReLU triangle relaxation (slope ``alpha`` in ``[0, 1]`` below zero).

For real ``l < 0 < u`` and ``x`` in ``[l, u]``:

* upper chord: ``leaky(x) <= leaky(l) + (leaky(u) - leaky(l)) (x - l) / (u - l)``;
* lower lines: ``leaky(x) >= beta x`` for every ``beta`` in ``[alpha, 1]``;
* stable cases: ``leaky(x) = x`` for ``l >= 0``, ``leaky(x) = alpha x`` for ``u <= 0``.

Proved by Z3 with ``l, u, x, alpha, beta`` free reals.
"""

from __future__ import annotations

import z3

from proofs.lemmas.base import LemmaResult, leaky, run_checks, z3_valid

NAME = "leaky_relu"


def check(alpha_max: float = 1.0) -> LemmaResult:
    """Prove the statements for ``alpha`` in ``[0, alpha_max]`` (tests use > 1)."""
    lo, u, x, a, b = z3.Reals("l u x alpha beta")
    hyp = [lo < 0, 0 < u, lo <= x, x <= u, 0 <= a, a <= z3.RealVal(alpha_max)]
    chord = leaky(lo, a) + (leaky(u, a) - leaky(lo, a)) * (x - lo) / (u - lo)
    checks = [
        ("upper chord", lambda: z3_valid(hyp, leaky(x, a) <= chord)),
        ("lower lines", lambda: z3_valid([*hyp, a <= b, b <= 1], leaky(x, a) >= b * x)),
        ("stable active", lambda: z3_valid([0 <= lo, lo <= x, x <= u], leaky(x, a) == x)),
        ("stable inactive", lambda: z3_valid([u <= 0, lo <= x, x <= u], leaky(x, a) == a * x)),
    ]
    return run_checks(NAME, "z3", checks)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
