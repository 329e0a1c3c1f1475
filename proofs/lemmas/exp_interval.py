"""Interval rule of exp: ``exp(l) <= exp(x) <= exp(u)`` for ``x`` in ``[l, u]``.

Machine-checked: ``exp' = exp > 0`` (SymPy); monotone function -> interval rule (Z3).
"""

from __future__ import annotations

import sympy

from proofs.lemmas._monotone import ASSUMES, prove_monotone
from proofs.lemmas.base import LemmaResult, X

NAME = "exp_interval"
__all__ = ["ASSUMES", "NAME", "prove"]


def prove() -> LemmaResult:
    """Run the machine proof."""
    return prove_monotone(NAME, sympy.exp(X), X, "positive")
