"""The interval (box) abstract value."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Interval:
    """Elementwise bounds ``lower <= x <= upper`` of a batch of values.

    Attributes:
        lower: ``(B, *shape)`` lower bounds (``B`` may be 1 for constants, broadcast).
        upper: ``(B, *shape)`` upper bounds.

    A NaN in either bound means "unknown" (the concrete value may itself be NaN); an
    infinite bound is a (weak) valid bound.
    """

    lower: torch.Tensor
    upper: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        """The IR shape (without the batch axis)."""
        return tuple(self.lower.shape[1:])

    @property
    def batch(self) -> int:
        """The batch size."""
        return int(self.lower.shape[0])

    @staticmethod
    def exact(value: torch.Tensor) -> Interval:
        """The singleton ``[value, value]``."""
        return Interval(value, value)

    def map(self, fn) -> Interval:
        """Apply an exact, monotone nondecreasing map to both bounds."""
        return Interval(fn(self.lower), fn(self.upper))
