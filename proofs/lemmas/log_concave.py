"""Linear bounds of log on ``x > 0`` (``domains.relaxations.log_lines``).

* Tangent-type upper line: for every real ``a > 0`` and ``x > 0``,
  ``ln x <= a x - ln a - 1``.
* Chord-type lower line: ``ln x - a x`` is concave on ``x > 0``, so over ``[l, u]``
  (``l > 0``) it is at least ``min(ln l - a l, ln u - a u)``.

Machine-checked (SymPy, exact): ``h(x) = a x - ln a - 1 - ln x`` has ``h(1/a) = 0``,
``h'(1/a) = 0`` and ``h'' = 1/x^2 > 0``; ``(ln x - a x)'' = -1/x^2 < 0``.
"""

from __future__ import annotations

import sympy

from proofs.lemmas.base import LemmaResult, run_checks, sympy_sign, sympy_zero

NAME = "log_concave"
ASSUMES = (
    "a convex differentiable function on an open interval attains its minimum at a "
    "stationary point",
    "a concave function attains its minimum over [l, u] at l or u",
)


def check(offset: sympy.Expr | None = None) -> LemmaResult:
    """Prove it for the upper-line offset ``b(a)`` (default ``-ln a - 1``)."""
    a = sympy.Symbol("a", positive=True)
    x = sympy.Symbol("x", positive=True)
    b = -sympy.log(a) - 1 if offset is None else offset(a)
    h = a * x + b - sympy.log(x)
    star = 1 / a
    value = sympy.simplify(h.subs(x, star))
    checks = [
        ("h'(1/a) = 0", lambda: sympy_zero(sympy.diff(h, x).subs(x, star))),
        (
            "h(1/a) >= 0",
            lambda: (True, "exactly 0") if value == 0 else sympy_sign(value, "nonnegative"),
        ),
        ("h'' > 0", lambda: sympy_sign(sympy.diff(h, x, 2), "positive")),
        (
            "(ln x - a x)'' < 0",
            lambda: sympy_sign(sympy.diff(sympy.log(x) - a * x, x, 2), "negative"),
        ),
    ]
    return run_checks(NAME, "sympy", checks, ASSUMES)


def prove() -> LemmaResult:
    """Run the machine proof."""
    return check()
