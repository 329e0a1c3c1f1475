"""Tangent and chord bounds of the sigmoid.

The sigmoid is convex on ``x <= 0`` and concave on ``x >= 0``. Hence on ``[l, u]`` with
``u <= 0`` the chord is an upper bound and every tangent at ``d`` in ``[l, u]`` a lower
bound; on ``[l, u]`` with ``l >= 0`` the chord is a lower bound and tangents upper bounds.

Machine-checked: the signs of ``sigmoid''`` on both half-lines (SymPy + Z3 via
``t = exp(-x)``); the step from curvature to chords/tangents is in ``ASSUMES``.
"""

from __future__ import annotations

import sympy

from proofs.lemmas._curvature import ASSUMES, prove_curvature
from proofs.lemmas.base import LemmaResult, X

NAME = "sigmoid_tangent_chord"
__all__ = ["ASSUMES", "NAME", "prove"]


def prove(convex_on: str = "x<=0") -> LemmaResult:
    """Run the machine proof (``convex_on="x>=0"`` is the false variant, for tests)."""
    return prove_curvature(NAME, 1 / (1 + sympy.exp(-X)), convex_on)
