"""Minimum slope of the sigmoid over an interval.

``sigmoid'(x) = 1 / (4 cosh(x/2)^2)`` is even and nonincreasing in ``|x|``, so
``min_{[l, u]} sigmoid' = min(sigmoid'(l), sigmoid'(u))`` for all reals ``l <= u``.

Machine-checked: the closed form and evenness (SymPy), ``sigmoid'' <= 0`` on ``x >= 0``
(SymPy + Z3 via ``t = exp(-x)``), and the endpoint argument (Z3).
"""

from __future__ import annotations

import sympy

from proofs.lemmas._slope import ASSUMES, prove_slope
from proofs.lemmas.base import LemmaResult, X

NAME = "sigmoid_slope"
__all__ = ["ASSUMES", "NAME", "prove"]


def prove(sign: str = "<=0") -> LemmaResult:
    """Run the machine proof (``sign=">=0"`` states a false variant, for tests)."""
    f = 1 / (1 + sympy.exp(-X))
    return prove_slope(NAME, f, 1 / (4 * sympy.cosh(X / 2) ** 2), sign)
