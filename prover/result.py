"""Verdicts and results returned by ``prove`` and ``claim``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Verdict(enum.Enum):
    """The three answers the verifier gives. Nothing in between, never a guess."""

    HOLDS = "holds"
    VIOLATED = "violated"
    UNKNOWN = "unknown"


#: What ``r.soundness`` says for results decided by the bound-propagation domains.
REAL_ARITHMETIC_WITH_ROUNDING = (
    "real arithmetic over the stored weights (float64 after import); float64 rounding "
    "in bound propagation covered by a rigorous a-priori error bound (widening); "
    "exp/log/tanh/sigmoid/sqrt assumed accurate to a few ulp (libm); float32 inference "
    "rounding not covered"
)


@dataclass(frozen=True, eq=False)
class Result:
    """The outcome of a proof attempt.

    Attributes:
        verdict: HOLDS, VIOLATED or UNKNOWN.
        counterexample: an input inside the region violating the property, replayed on
            ONNX Runtime (VIOLATED only), else None.
        bounds: (lower, upper) of the outputs that the proof used, when it used some.
        method: how it was decided (e.g. "interval", "zonotope", "pgd", "bab").
        elapsed: wall-clock seconds.
        soundness: the arithmetic the claim is sound for.
        reason: why the verdict is UNKNOWN, or extra detail.
        value: a certified number where the property asks for one (Lipschitz constant).
        certificate: path of the certificate written, if any.
        checked: whether the independent checker accepted the certificate.
        stats: free-form statistics (nodes visited, leaves, ...).
    """

    verdict: Verdict
    counterexample: np.ndarray | None = None
    bounds: tuple[np.ndarray, np.ndarray] | None = None
    method: str = ""
    elapsed: float = 0.0
    soundness: str = REAL_ARITHMETIC_WITH_ROUNDING
    reason: str = ""
    value: float | None = None
    certificate: str | None = None
    checked: bool = False
    output: np.ndarray | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        """Shorthand for ``verdict is Verdict.HOLDS``."""
        return self.verdict is Verdict.HOLDS

    def summary(self) -> str:
        """One line for humans."""
        text = f"{self.verdict.value.upper()} ({self.method or 'no method'}, {self.elapsed:.3f}s)"
        if self.reason:
            text += f": {self.reason}"
        return text
