"""Tangent and chord bounds of tanh.

tanh is convex on ``x <= 0`` and concave on ``x >= 0``: on ``[l, u]`` with ``u <= 0``
chord above, tangents below; with ``l >= 0`` chord below, tangents above.

Machine-checked as :mod:`proofs.lemmas.sigmoid_tangent_chord`.
"""

from __future__ import annotations

import sympy

from proofs.lemmas._curvature import ASSUMES, prove_curvature
from proofs.lemmas.base import LemmaResult, X

NAME = "tanh_tangent_chord"
__all__ = ["ASSUMES", "NAME", "prove"]


def prove() -> LemmaResult:
    """Run the machine proof."""
    return prove_curvature(NAME, sympy.tanh(X))
