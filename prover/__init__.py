"""A sound verifier for neural networks.

>>> from prover import prove, load, Robust, LinfBall          # doctest: +SKIP
>>> result = prove("net.onnx", Robust(label=3), LinfBall(x0, eps=0.01))  # doctest: +SKIP
"""

from prover.api import bounds, evaluate, load, prove
from prover.errors import ProverError
from prover.options import Options
from prover.result import Result, Verdict
from prover.spec import Box, Linear, LinfBall, OutputBounds, Robust, Unsafe

__version__ = "0.1.0"

__all__ = [
    "Box",
    "Linear",
    "LinfBall",
    "Options",
    "OutputBounds",
    "ProverError",
    "Result",
    "Robust",
    "Unsafe",
    "Verdict",
    "__version__",
    "bounds",
    "evaluate",
    "load",
    "prove",
]
