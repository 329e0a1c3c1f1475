"""Whole-model properties: valid probabilities, finiteness, Lipschitz, monotonicity.

Each decides itself through ``prove_on(graph, region, options)``, which
:func:`prover.api.prove` calls instead of the polytope engine; ``region`` None means
every input (each property documents what that claim is sound for).
"""

from prover.properties.finite import Finite
from prover.properties.lipschitz import Lipschitz
from prover.properties.monotonic import Monotonic
from prover.properties.valid_probabilities import ValidProbabilities

__all__ = ["Finite", "Lipschitz", "Monotonic", "ValidProbabilities"]
