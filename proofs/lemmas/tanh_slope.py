"""Minimum slope of tanh over an interval.

``tanh'(x) = 1 / cosh(x)^2`` is even and nonincreasing in ``|x|``, so
``min_{[l, u]} tanh' = min(tanh'(l), tanh'(u))`` for all reals ``l <= u``.

Machine-checked as :mod:`proofs.lemmas.sigmoid_slope`.
"""

from __future__ import annotations

import sympy

from proofs.lemmas._slope import ASSUMES, prove_slope
from proofs.lemmas.base import LemmaResult, X

NAME = "tanh_slope"
__all__ = ["ASSUMES", "NAME", "prove"]


def prove() -> LemmaResult:
    """Run the machine proof."""
    return prove_slope(NAME, sympy.tanh(X), 1 / sympy.cosh(X) ** 2, "<=0")
