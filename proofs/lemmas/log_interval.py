"""Interval rule of log: ``ln l <= ln x <= ln u`` for ``0 < l <= x <= u``.

Machine-checked: ``(ln x)' = 1/x > 0`` for ``x > 0`` (SymPy); interval rule (Z3).
"""

from __future__ import annotations

import sympy

from proofs.lemmas._monotone import ASSUMES, prove_monotone
from proofs.lemmas.base import LemmaResult

NAME = "log_interval"
__all__ = ["ASSUMES", "NAME", "prove"]


def prove() -> LemmaResult:
    """Run the machine proof."""
    x = sympy.Symbol("x", positive=True)
    return prove_monotone(NAME, sympy.log(x), x, "positive")
