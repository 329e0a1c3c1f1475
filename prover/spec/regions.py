"""Input regions: the sets of inputs a property is claimed over.

Regions are validated on construction (finite numbers, lower <= upper, eps >= 0) and
fitted to a model's input shape with :meth:`to_box`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prover.errors import RegionError


def _array(value: object, what: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise RegionError(f"{what} is not numeric: {exc}") from None
    if np.isnan(array).any():
        raise RegionError(f"{what} holds NaN")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Box:
    """The axis-aligned box ``lower <= x <= upper`` (element-wise, both closed).

    Raises:
        RegionError: on NaN, infinite bounds, mismatched shapes or lower > upper.
    """

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lower = _array(self.lower, "box lower bound")
        upper = _array(self.upper, "box upper bound")
        if lower.shape != upper.shape:
            if lower.size == upper.size:
                upper = upper.reshape(lower.shape)
            else:
                raise RegionError(
                    f"box bounds have different shapes: lower {lower.shape}, upper {upper.shape}"
                )
        if not (np.isfinite(lower).all() and np.isfinite(upper).all()):
            raise RegionError("box bounds must be finite")
        bad = np.flatnonzero(lower.reshape(-1) > upper.reshape(-1))
        if bad.size:
            i = int(bad[0])
            raise RegionError(
                f"inverted box: lower[{i}] = {lower.reshape(-1)[i]!r} > "
                f"upper[{i}] = {upper.reshape(-1)[i]!r} ({bad.size} inverted dims); "
                "the region is empty"
            )
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the bounds."""
        return tuple(self.lower.shape)

    @property
    def center(self) -> np.ndarray:
        """Midpoint of the box."""
        return (self.lower + self.upper) / 2

    def contains(self, x: np.ndarray) -> bool:
        """Whether ``x`` lies in the closed box (strictly, with no tolerance)."""
        x = np.asarray(x, dtype=np.float64).reshape(self.lower.shape)
        return bool(np.all(x >= self.lower) and np.all(x <= self.upper))

    def to_box(self, shape: tuple[int, ...]) -> Box:
        """This box reshaped to ``shape`` (same number of elements), or RegionError."""
        if self.shape == tuple(shape):
            return self
        if self.lower.size != int(np.prod(shape)):
            raise RegionError(
                f"region has shape {self.shape} ({self.lower.size} values) but the model "
                f"input has shape {tuple(shape)} ({int(np.prod(shape))} values)"
            )
        return Box(self.lower.reshape(shape), self.upper.reshape(shape))

    def __repr__(self) -> str:
        return f"Box(shape={self.shape}, width_max={float(np.max(self.upper - self.lower)):.3g})"


@dataclass(frozen=True, eq=False)
class LinfBall:
    """The L-infinity ball ``|x - center| <= eps``, optionally clipped to ``[clip_min, clip_max]``.

    Raises:
        RegionError: on a negative or non-finite eps, or a NaN center.
    """

    center: np.ndarray
    eps: float
    clip_min: float | np.ndarray | None = None
    clip_max: float | np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "center", _array(self.center, "ball center"))
        eps = np.asarray(self.eps, dtype=np.float64)
        if np.isnan(eps).any() or not np.isfinite(eps).all() or (eps < 0).any():
            raise RegionError(f"eps must be finite and non-negative, got {self.eps!r}")
        if not np.isfinite(self.center).all():
            raise RegionError("ball center must be finite")

    def to_box(self, shape: tuple[int, ...] | None = None) -> Box:
        """The box of the ball, clipped when clip bounds are given."""
        lower = self.center - self.eps
        upper = self.center + self.eps
        if self.clip_min is not None:
            lower = np.maximum(lower, self.clip_min)
        if self.clip_max is not None:
            upper = np.minimum(upper, self.clip_max)
        box = Box(lower, upper)
        return box if shape is None else box.to_box(shape)


Region = Box | LinfBall
