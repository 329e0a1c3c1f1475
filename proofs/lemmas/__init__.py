"""Machine proofs (Z3, SymPy) that the scalar relaxations the domains use are sound.

Each module has ``NAME``, a docstring stating the inequality, and ``prove() ->
LemmaResult`` which really runs the solvers (parameters such as ``l < 0 < u`` are free
reals, not samples). Names match ``domains.relaxations.LEMMAS`` where a relaxation
names a lemma.
"""

from __future__ import annotations

from types import ModuleType

from proofs.lemmas import (
    exp_convex,
    exp_interval,
    exp_slope,
    leaky_relu,
    log_concave,
    log_interval,
    monotone_offset,
    piecewise_linear_offset,
    relu_deepz,
    relu_triangle,
    sigmoid_interval,
    sigmoid_slope,
    sigmoid_tangent_chord,
    softmax_interval,
    tanh_slope,
    tanh_tangent_chord,
)
from proofs.lemmas.base import LemmaResult

_MODULES = (
    relu_triangle,
    relu_deepz,
    leaky_relu,
    piecewise_linear_offset,
    monotone_offset,
    sigmoid_slope,
    tanh_slope,
    sigmoid_tangent_chord,
    tanh_tangent_chord,
    sigmoid_interval,
    exp_slope,
    exp_convex,
    exp_interval,
    log_concave,
    log_interval,
    softmax_interval,
)

#: Lemma name -> module.
LEMMAS: dict[str, ModuleType] = {module.NAME: module for module in _MODULES}


def prove_all() -> dict[str, LemmaResult]:
    """Run every lemma's proof; name -> result."""
    return {name: module.prove() for name, module in LEMMAS.items()}


__all__ = ["LEMMAS", "LemmaResult", "prove_all"]
