"""Interval rule of softmax over a box (``domains.relaxations.softmax_interval``).

For a box ``l <= x <= u`` in R^n and each ``i``::

    e^{l_i} / (e^{l_i} + sum_{j != i} e^{u_j}) <= softmax_i(x)
        <= e^{u_i} / (e^{u_i} + sum_{j != i} e^{l_j})

Machine-checked:

* SymPy (n = 3): ``d softmax_i / d x_i = s_i (1 - s_i) > 0`` and ``d softmax_i / d x_j =
  -s_i s_j < 0`` (exact identities and signs), the monotonicity argument;
* Z3 (any n, through the sum ``R = sum_{j != i} e^{x_j}``): for positive reals with
  ``El <= e <= Eu`` and ``Rl <= R <= Ru``, ``El/(El + Ru) <= e/(e + R) <= Eu/(Eu + Rl)``;
  and, expanded for n = 4 with one variable per exponential, the full inequality from
  ``e^{l_j} <= e^{x_j} <= e^{u_j}`` (the exp interval rule, :mod:`exp_interval`).
"""

from __future__ import annotations

import sympy
import z3

from proofs.lemmas.base import LemmaResult, run_checks, sympy_sign, sympy_zero, z3_valid

NAME = "softmax_interval"
ASSUMES = ("exp is positive and increasing (proofs.lemmas.exp_interval)",)


def _derivatives() -> tuple[bool, str]:
    xs = sympy.symbols("x0:3", real=True)
    total = sum(sympy.exp(v) for v in xs)
    s = [sympy.exp(v) / total for v in xs]
    own = sympy.diff(s[0], xs[0])
    other = sympy.diff(s[0], xs[1])
    for ok, why in (
        sympy_zero(own - s[0] * (1 - s[0])),
        sympy_zero(other + s[0] * s[1]),
        sympy_sign(sympy.exp(xs[0]) * (total - sympy.exp(xs[0])) / total**2, "positive"),
        sympy_sign(-sympy.exp(xs[0] + xs[1]) / total**2, "negative"),
    ):
        if not ok:
            return False, why
    return True, "SymPy: d s_i/d x_i = s_i (1 - s_i) > 0, d s_i/d x_j = -s_i s_j < 0"


def check(swap: bool = False) -> LemmaResult:
    """Prove it; ``swap`` pairs the lower numerator with the lower sum (false, tests)."""
    el, e, eu, rl, r, ru = z3.Reals("El e Eu Rl R Ru")
    hyp = [0 < el, el <= e, e <= eu, 0 < rl, rl <= r, r <= ru]
    low = el / (el + (rl if swap else ru))
    high = eu / (eu + rl)
    reduced = z3.And(low <= e / (e + r), e / (e + r) <= high)

    n = 4
    lo_e = z3.RealVector("El", n)
    ex = z3.RealVector("e", n)
    up_e = z3.RealVector("Eu", n)
    full_hyp = [c for j in range(n) for c in (0 < lo_e[j], lo_e[j] <= ex[j], ex[j] <= up_e[j])]
    others = range(1, n)
    lower = lo_e[0] / (lo_e[0] + z3.Sum([(lo_e if swap else up_e)[j] for j in others]))
    upper = up_e[0] / (up_e[0] + z3.Sum([lo_e[j] for j in others]))
    soft = ex[0] / z3.Sum(ex)
    full = z3.And(lower <= soft, soft <= upper)
    checks = [
        ("partial derivative signs (n = 3)", _derivatives),
        ("reduced rule (any n)", lambda: z3_valid(hyp, reduced)),
        ("expanded rule (n = 4)", lambda: z3_valid(full_hyp, full)),
    ]
    return run_checks(NAME, "sympy+z3", checks, ASSUMES)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
