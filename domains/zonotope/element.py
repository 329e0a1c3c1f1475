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
        hint_lower: optional sound elementwise lower bounds known from elsewhere (interval
            propagation); :meth:`bounds` intersects with them (a reduced product).
        hint_upper: the matching upper bounds.
    """

    center: torch.Tensor
    generators: torch.Tensor
    box: torch.Tensor
    noise: NoiseSymbols | None
    hint_lower: torch.Tensor | None = None
    hint_upper: torch.Tensor | None = None

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
        out = Zonotope(c, gens, torch.zeros_like(c), NoiseSymbols(idx.numel()))
        out.__dict__["diagonal"] = (idx, flat[:, idx])
        return out

    def with_hints(self, lower: torch.Tensor, upper: torch.Tensor) -> Zonotope:
        """The same zonotope with sound bounds known from elsewhere (kept caches)."""
        out = Zonotope(self.center, self.generators, self.box, self.noise, lower, upper)
        for key in ("_radius", "diagonal"):
            if key in self.__dict__:
                out.__dict__[key] = self.__dict__[key]
        return out

    @property
    def diagonal_generators(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(idx, radius)`` when generator ``k`` is ``radius[:, k]`` at flat position
        ``idx[k]`` and zero elsewhere (the input zonotope, and reshapes of it), else None.
        Lets the first Gemm scale weight columns instead of multiplying by a diagonal."""
        return self.__dict__.get("diagonal")

    @cached_property
    def _radius(self) -> torch.Tensor:
        if self.n_generators == 0:
            return self.box
        return up(upper_sum(self.generators.abs(), 1) + self.box)

    def radius(self) -> torch.Tensor:
        """An upper bound of ``sum_k |G_k| + box`` per neuron (computed once, cached)."""
        return self._radius

    def with_radius(self, radius: torch.Tensor) -> Zonotope:
        """Record a known upper bound of ``sum_k |G_k| + box`` (saves recomputing it).

        The caller must guarantee the bound; :meth:`bounds` and error terms rely on it.
        """
        self.__dict__["_radius"] = radius  # the cached_property's slot (instance dict)
        return self

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sound elementwise lower and upper bounds (rounded outward).

        Soundness: every point of the zonotope is within ``radius`` of the center; with
        hints, the intersection of two sound enclosures is sound (NaN in either stays NaN).
        """
        rad = self.radius()
        lower, upper = down(self.center - rad), up(self.center + rad)
        if self.hint_lower is not None and self.hint_upper is not None:
            lower = torch.maximum(lower, self.hint_lower)
            upper = torch.minimum(upper, self.hint_upper)
        return lower, upper

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
