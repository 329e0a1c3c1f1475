"""Properties: claims about a model's outputs, and their normal form.

Every property is normalised once into :class:`Subproblem` s: an input box and a
disjunction of unsafe polytopes ``C y <= d`` over the flattened output ``y``. The property
holds over the region iff no unsafe polytope is reachable from any subproblem's box.
The polytopes are closed over-approximations of the (possibly strict) unsafe sets, so
"unreachable" is a sound proof; a counterexample is always confirmed with the property's
exact predicate :meth:`Property.violated_by`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prover.errors import PropertyError
from prover.spec.regions import Box


@dataclass(frozen=True, eq=False)
class Polytope:
    """The set ``{y : C @ y <= d}`` (all rows together)."""

    C: np.ndarray
    d: np.ndarray

    def __post_init__(self) -> None:
        C = np.atleast_2d(np.array(self.C, dtype=np.float64))
        d = np.array(self.d, dtype=np.float64).reshape(-1)
        if C.shape[0] != d.shape[0]:
            raise PropertyError(f"C has {C.shape[0]} rows but d has {d.shape[0]}")
        if not (np.isfinite(C).all() and np.isfinite(d).all()):
            raise PropertyError("unsafe polytope holds NaN or Inf")
        C.setflags(write=False)
        d.setflags(write=False)
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "d", d)

    def contains(self, y: np.ndarray) -> bool:
        """Whether ``y`` satisfies every row (exactly, no tolerance)."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        return bool(np.all(self.C @ y <= self.d))


@dataclass(frozen=True, eq=False)
class Subproblem:
    """An input box and the unsafe polytopes (a disjunction) to prove unreachable."""

    box: Box
    unsafe: tuple[Polytope, ...]


class Property:
    """Base class of output properties."""

    def unsafe_polytopes(self, n_outputs: int) -> tuple[Polytope, ...]:
        """The disjunction of unsafe sets over flattened outputs of size ``n_outputs``."""
        raise NotImplementedError

    def violated_by(self, y: np.ndarray) -> bool:
        """Whether the concrete output ``y`` violates the property (exact predicate)."""
        return any(p.contains(y) for p in self.unsafe_polytopes(np.asarray(y).size))

    def describe(self) -> str:
        """A one-line human description."""
        return type(self).__name__


def _check_index(index: int, n_outputs: int, what: str) -> None:
    if not 0 <= index < n_outputs:
        raise PropertyError(f"{what} {index} does not exist: the model has {n_outputs} outputs")


@dataclass(frozen=True, eq=False)
class Robust(Property):
    """Output ``label`` is strictly greater than every other output."""

    label: int

    def unsafe_polytopes(self, n_outputs: int) -> tuple[Polytope, ...]:
        _check_index(self.label, n_outputs, "label")
        rows = []
        for j in range(n_outputs):
            if j == self.label:
                continue
            c = np.zeros(n_outputs)
            c[self.label], c[j] = 1.0, -1.0  # y_label - y_j <= 0
            rows.append(Polytope(c[None, :], [0.0]))
        if not rows:
            raise PropertyError("Robust needs a model with at least two outputs")
        return tuple(rows)

    def violated_by(self, y: np.ndarray) -> bool:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        others = np.delete(y, self.label)
        return bool(np.any(others >= y[self.label]))

    def describe(self) -> str:
        return f"robust: output {self.label} is the strict maximum"


@dataclass(frozen=True, eq=False)
class OutputBounds(Property):
    """``lower <= y <= upper`` element-wise; None or infinite entries are unconstrained."""

    lower: object = None
    upper: object = None

    def _bounds(self, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
        def fit(value: object, fill: float) -> np.ndarray:
            if value is None:
                return np.full(n_outputs, fill)
            array = np.array(value, dtype=np.float64).reshape(-1)
            if array.size == 1:
                array = np.full(n_outputs, float(array[0]))
            if array.size != n_outputs:
                raise PropertyError(
                    f"OutputBounds gives {array.size} bounds but the model has {n_outputs} outputs"
                )
            if np.isnan(array).any():
                raise PropertyError("OutputBounds holds NaN")
            return array

        return fit(self.lower, -np.inf), fit(self.upper, np.inf)

    def unsafe_polytopes(self, n_outputs: int) -> tuple[Polytope, ...]:
        lower, upper = self._bounds(n_outputs)
        rows = []
        for i in range(n_outputs):
            if np.isfinite(lower[i]):  # y_i <= lower_i  (closure of y_i < lower_i)
                c = np.zeros(n_outputs)
                c[i] = 1.0
                rows.append(Polytope(c[None, :], [lower[i]]))
            if np.isfinite(upper[i]):  # -y_i <= -upper_i
                c = np.zeros(n_outputs)
                c[i] = -1.0
                rows.append(Polytope(c[None, :], [-upper[i]]))
        return tuple(rows)

    def violated_by(self, y: np.ndarray) -> bool:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        lower, upper = self._bounds(y.size)
        return bool(np.any(y < lower) or np.any(y > upper) or np.isnan(y).any())

    def describe(self) -> str:
        return "output bounds"


@dataclass(frozen=True, eq=False)
class Linear(Property):
    """``C @ y <= d`` for every row (a conjunction)."""

    C: object
    d: object

    def _arrays(self, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
        C = np.atleast_2d(np.array(self.C, dtype=np.float64))
        d = np.array(self.d, dtype=np.float64).reshape(-1)
        if C.shape[1] != n_outputs:
            raise PropertyError(f"C has {C.shape[1]} columns but the model has {n_outputs} outputs")
        if C.shape[0] != d.size:
            raise PropertyError(f"C has {C.shape[0]} rows but d has {d.size}")
        return C, d

    def unsafe_polytopes(self, n_outputs: int) -> tuple[Polytope, ...]:
        C, d = self._arrays(n_outputs)
        return tuple(Polytope(-C[i][None, :], [-d[i]]) for i in range(C.shape[0]))

    def violated_by(self, y: np.ndarray) -> bool:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        C, d = self._arrays(y.size)
        return bool(np.any(C @ y > d) or np.isnan(y).any())

    def describe(self) -> str:
        return f"linear: {np.atleast_2d(np.asarray(self.C)).shape[0]} rows of C y <= d"


@dataclass(frozen=True, eq=False)
class Unsafe(Property):
    """The property that none of the given unsafe polytopes is reachable (VNN-LIB style)."""

    polytopes: tuple[Polytope, ...]

    def unsafe_polytopes(self, n_outputs: int) -> tuple[Polytope, ...]:
        for p in self.polytopes:
            if p.C.shape[1] != n_outputs:
                raise PropertyError(
                    f"property refers to {p.C.shape[1]} outputs but the model has {n_outputs}"
                )
        return self.polytopes

    def violated_by(self, y: np.ndarray) -> bool:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if np.isnan(y).any():
            return True
        return any(p.contains(y) for p in self.unsafe_polytopes(y.size))

    def describe(self) -> str:
        return f"{len(self.polytopes)} unsafe polytopes"
