"""Linear bounds of exp (``domains.relaxations.exp_lines``).

* Tangent-type lower line: for every real ``a > 0`` and every real ``x``,
  ``exp(x) >= a x + a (1 - ln a)``.
* Chord-type upper line: ``exp(x) - a x`` is convex, so over ``[l, u]`` it is at most
  ``max(exp(l) - a l, exp(u) - a u)`` for every slope ``a``.

Machine-checked (SymPy, exact): ``h(x) = exp(x) - a x - a (1 - ln a)`` has ``h(ln a) = 0``,
``h'(ln a) = 0`` and ``h'' = exp(x) > 0``; ``(exp(x) - a x)'' = exp(x) > 0``.
"""

from __future__ import annotations

import sympy

from proofs.lemmas.base import LemmaResult, X, run_checks, sympy_sign, sympy_zero

NAME = "exp_convex"
ASSUMES = (
    "a convex differentiable function attains its global minimum at a stationary point",
    "a convex function attains its maximum over [l, u] at l or u",
)


def check(offset: sympy.Expr | None = None) -> LemmaResult:
    """Prove it for the lower-line offset ``b(a)`` (default ``a (1 - ln a)``)."""
    a = sympy.Symbol("a", positive=True)
    b = a * (1 - sympy.log(a)) if offset is None else offset(a)
    h = sympy.exp(X) - a * X - b
    star = sympy.log(a)
    checks = [
        ("h'(ln a) = 0", lambda: sympy_zero(sympy.diff(h, X).subs(X, star))),
        ("h(ln a) >= 0", lambda: _nonnegative(sympy.simplify(h.subs(X, star)))),
        ("h'' > 0", lambda: sympy_sign(sympy.diff(h, X, 2), "positive")),
        (
            "(exp(x) - a x)'' > 0",
            lambda: sympy_sign(sympy.diff(sympy.exp(X) - a * X, X, 2), "positive"),
        ),
    ]
    return run_checks(NAME, "sympy", checks, ASSUMES)


def _nonnegative(value: sympy.Expr) -> tuple[bool, str]:
    if value == 0:
        return True, "SymPy: exactly 0"
    return sympy_sign(value, "nonnegative")


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
