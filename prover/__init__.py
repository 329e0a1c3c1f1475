"""A sound verifier for neural networks.

>>> from prover import prove, load, Robust, LinfBall          # doctest: +SKIP
>>> result = prove("net.onnx", Robust(label=3), LinfBall(x0, eps=0.01))  # doctest: +SKIP

The public names are loaded lazily (PEP 562), so that importing a low layer such as
``prover.errors`` or ``prover.ir`` does not pull in the engine, torch and the domains.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "bounds": "prover.api",
    "evaluate": "prover.api",
    "load": "prover.api",
    "prove": "prover.api",
    "ProverError": "prover.errors",
    "Options": "prover.options",
    "Result": "prover.result",
    "Verdict": "prover.result",
    "Box": "prover.spec",
    "Linear": "prover.spec",
    "LinfBall": "prover.spec",
    "OutputBounds": "prover.spec",
    "Robust": "prover.spec",
    "Unsafe": "prover.spec",
    "VNNLib": "importers.vnnlib",
    "claim": "prover.symbolic",
    "ValidProbabilities": "prover.properties",
    "Finite": "prover.properties",
    "Lipschitz": "prover.properties",
    "Monotonic": "prover.properties",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prover' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
