"""Properties and regions, and their normal form (input box + unsafe polytopes)."""

from prover.spec.properties import (
    Linear,
    OutputBounds,
    Polytope,
    Property,
    Robust,
    Subproblem,
    Unsafe,
)
from prover.spec.regions import Box, LinfBall, Region

__all__ = [
    "Box",
    "Linear",
    "LinfBall",
    "OutputBounds",
    "Polytope",
    "Property",
    "Region",
    "Robust",
    "Subproblem",
    "Unsafe",
]
