"""The zonotope abstract value (DeepZ style) with a per-neuron error box.

A zonotope over a batch of boxes describes, for each batch row ``b``, the set::

    { center[b] + sum_k eps_k * generators[b, k] + delta * box[b] :
      eps in [-1, 1]^K, delta in [-1, 1]^shape (elementwise) }

The noise symbols ``eps_k`` are shared by every value of one propagation: column ``k``
means the same symbol everywhere, so residual branches stay correlated. Fresh symbols are
handed out by the propagation's :class:`NoiseSymbols` counter, which is carried by every
element of that propagation, so two branches never reuse each other's columns. A value
with fewer columns than another is zero-padded (a missing column is a zero generator).

``box`` is a non-correlated radius per neuron: it collects floating-point error and is
passed through affine maps with ``|W|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from domains.rounding import center_radius, down, up, upper_sum


class NoiseSymbols:
    """Allocator of noise-symbol columns for one propagation (shared by its elements)."""

    def __init__(self, count: int = 0) -> None:
        self.count = count

    def take(self, n: int) -> int:
        """Reserve ``n`` fresh columns; return the index of the first one."""
        start = self.count
        self.count += n
        return start


@dataclass(frozen=True, eq=False)
class Zonotope:
    """A batch of zonotopes.

    Attributes:
        center: ``(B, *shape)``.
        generators: ``(B, K, *shape)``; column ``k`` is noise symbol ``k``.
        box: ``(B, *shape)`` non-negative uncorrelated radius.
        noise: the propagation's allocator (None for constants built without one).
    """

    center: torch.Tensor
    generators: torch.Tensor
    box: torch.Tensor
    noise: NoiseSymbols | None

    @property
    def shape(self) -> tuple[int, ...]:
        """The IR shape (no batch axis)."""
        return tuple(self.center.shape[1:])

    @property
    def batch(self) -> int:
        """Batch size (1 for constants)."""
        return int(self.center.shape[0])

    @property
    def n_generators(self) -> int:
        """Number of generator columns held (K)."""
        return int(self.generators.shape[1])

    def is_exact_constant(self) -> bool:
        """Whether this is a single point (no generators, zero box)."""
        return self.n_generators == 0 and not bool(self.box.any())

    @staticmethod
    def constant(value: torch.Tensor, noise: NoiseSymbols | None = None) -> Zonotope:
        """The exact zonotope of ``value`` (batch-first)."""
        gens = value.new_zeros((value.shape[0], 0) + tuple(value.shape[1:]))
        return Zonotope(value, gens, torch.zeros_like(value), noise)

    @staticmethod
    def from_box(lower: torch.Tensor, upper: torch.Tensor) -> Zonotope:
        """A zonotope holding each box exactly: one generator per varying input.

        Inputs whose radius is 0 in every batch row get no column.
        """
        c, r = center_radius(lower, upper)
        batch = c.shape[0]
        flat = r.reshape(batch, -1)
        idx = torch.nonzero((flat != 0).any(dim=0)).reshape(-1)
        gens = flat.new_zeros((batch, idx.numel(), flat.shape[1]))
        gens[:, torch.arange(idx.numel(), device=idx.device), idx] = flat[:, idx]
        gens = gens.reshape((batch, idx.numel()) + tuple(c.shape[1:]))
        return Zonotope(c, gens, torch.zeros_like(c), NoiseSymbols(idx.numel()))

    @cached_property
    def _radius(self) -> torch.Tensor:
        if self.n_generators == 0:
            return self.box
        return up(upper_sum(self.generators.abs(), 1) + self.box)

    def radius(self) -> torch.Tensor:
        """An upper bound of ``sum_k |G_k| + box`` per neuron (computed once, cached)."""
        return self._radius

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sound elementwise lower and upper bounds (rounded outward)."""
        rad = self.radius()
        return down(self.center - rad), up(self.center + rad)

    def magnitude(self) -> torch.Tensor:
        """An upper bound of ``|center| + sum_k |G_k| + box`` (for error terms)."""
        return up(self.center.abs() + self.radius())

    def padded(self, k: int) -> torch.Tensor:
        """The generators zero-padded to ``k`` columns."""
        extra = k - self.n_generators
        if extra <= 0:
            return self.generators
        pad = self.generators.new_zeros(
            (self.generators.shape[0], extra) + tuple(self.generators.shape[2:])
        )
        return torch.cat([self.generators, pad], dim=1)

    def flat_generators(self) -> torch.Tensor:
        """Generators as a ``(B * K, *shape)`` batch (to apply per-example ops)."""
        return self.generators.reshape((-1,) + self.shape)


def shared_noise(*values: Zonotope) -> NoiseSymbols | None:
    """The allocator of the first value that has one."""
    for value in values:
        if value.noise is not None:
            return value.noise
    return None
