"""ReLU triangle relaxation.

For real ``l < 0 < u`` and every ``x`` in ``[l, u]``:

* upper chord: ``relu(x) <= u (x - l) / (u - l)``;
* lower lines: ``relu(x) >= alpha x`` for every ``alpha`` in ``[0, 1]`` (``alpha = 0``
  gives ``relu(x) >= 0``);
* stable cases: ``relu(x) = x`` when ``0 <= l``, ``relu(x) = 0`` when ``u <= 0``.

Proved by Z3 over the reals with ``l, u, x, alpha`` free (universally quantified).
"""

from __future__ import annotations

import z3

from proofs.lemmas.base import LemmaResult, relu, run_checks, z3_valid

NAME = "relu_triangle"


def check(upper_shift: float = 0.0, alpha_max: float = 1.0) -> LemmaResult:
    """Prove the statements; ``upper_shift``/``alpha_max`` change them (tests use this)."""
    lo, u, x, a = z3.Reals("l u x alpha")
    box = [lo <= x, x <= u]
    chord = u * (x - lo) / (u - lo) + z3.RealVal(upper_shift)
    checks = [
        ("upper chord", lambda: z3_valid([lo < 0, 0 < u, *box], relu(x) <= chord)),
        (
            "lower line alpha x, alpha in [0, 1]",
            lambda: z3_valid([lo < 0, 0 < u, *box, 0 <= a, a <= alpha_max], relu(x) >= a * x),
        ),
        ("stable active", lambda: z3_valid([0 <= lo, *box], relu(x) == x)),
        ("stable inactive", lambda: z3_valid([u <= 0, *box], relu(x) == 0)),
    ]
    return run_checks(NAME, "z3", checks)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
