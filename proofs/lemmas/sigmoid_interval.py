"""Interval rule of the sigmoid and tanh: both are increasing, so ``f(l) <= f(x) <= f(u)``.

Machine-checked: ``sigmoid' = e^{-x} / (1 + e^{-x})^2 > 0`` and, with the identity
``tanh(x) = 2 / (1 + e^{-2x}) - 1`` (SymPy), ``tanh' = 4 e^{-2x} / (1 + e^{-2x})^2 > 0``
(SymPy's sign assumptions); the interval rule via Z3.
"""

from __future__ import annotations

import sympy

from proofs.lemmas._monotone import ASSUMES, prove_monotone
from proofs.lemmas.base import LemmaResult, X, sympy_zero

NAME = "sigmoid_interval"
__all__ = ["ASSUMES", "NAME", "prove"]


def prove() -> LemmaResult:
    """Run the machine proof (sigmoid, then tanh)."""
    first = prove_monotone(NAME, 1 / (1 + sympy.exp(-X)), X, "positive")
    if not first.holds:
        return first
    tanh_form = 2 / (1 + sympy.exp(-2 * X)) - 1
    same, why = sympy_zero(sympy.tanh(X) - tanh_form)
    if not same:
        return LemmaResult(NAME, False, "sympy", f"FAILED: tanh = 2 sigmoid(2x) - 1: {why}")
    second = prove_monotone(NAME, tanh_form, X, "positive")
    if not second.holds:
        return second
    return LemmaResult(
        NAME, True, "sympy+z3", "sigmoid: " + first.detail + "; tanh: " + second.detail, ASSUMES
    )
