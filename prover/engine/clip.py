"""Clipping an input box with the linear lower bounds of the unsafe rows (input splits).

A leaf's bound gives, for every row ``r`` of the unsafe polytopes, ``C_r y(x) >= A_r x +
c_r`` for every ``x`` of its box. A point is unsafe for polytope ``p`` only if every row
of ``p`` has ``C_r y <= d_r``, hence ``A_r x + c_r <= d_r``. So the part of the box where
some row of ``p`` has ``A_r x + c_r > d_r`` holds no point unsafe for ``p``, and the part
where that is true for every polytope can be cut away before splitting: the search then
bisects a smaller box. This is the domain clipping of Clip-and-Verify (Zhou et al.,
2025), in its closed form: one face at a time.

A *step* moves one face of the box: for dimension ``i`` and the upper face, to ``t`` such
that on the slab ``{x in box: x_i >= t}`` each polytope has a row with ``min A_r x + c_r >
d_r``; the box keeps ``[l_i, t]`` (the closed interval: a superset of what is left). Steps
run face by face, each on the box the previous ones left, so a later step can use the
room an earlier one made (several rows combine, which the one-row closing rule cannot).

Written by hand: the step is a few tensor operations in closed form, and an LP solver
would need outward rounding of its own. Certificates do not express steps: a step rests
on the search's own bound of the node, which the independent checker, computing its own
(different) intermediate bounds, cannot always confirm; runs that write a certificate
therefore do not clip (``BabConfig.clip``).

Soundness: the minimum of ``A_r x + c_r`` over the slab without dimension ``i`` is ``R =
c_r + sum_{k != i} min(A_rk l_k, A_rk u_k)``, computed with the error bound ``gamma_{n+1}
(|c_r| + sum |terms|)`` (Higham 3.4) subtracted and rounded down. For ``A_ri > 0`` the
slab ``x_i >= t`` is excluded by row ``r`` when ``R + A_ri t > d_r``; ``t = (d_r + mu -
R_down) / A_ri`` rounded up satisfies it with a margin ``mu`` (``2**-30`` of the terms'
magnitude: the cut stays strictly inside the excluded part). The lower face with ``A_ri
< 0`` is the mirror image. Non-finite values never move a face.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from domains.linear.floats import down, gamma, inflate, up
from prover.engine.leaves import Rows

#: Margin of a step, relative to the magnitude of the terms it sums.
MARGIN = 2.0**-30
UPPER, LOWER = 1, -1


@dataclass(frozen=True)
class Clipped:
    """Boxes after clipping, and the steps that made them.

    Attributes:
        lower, upper: ``(B, n)`` the clipped boxes (equal to the given ones where no step
            moved a face). A step that would cut a box away entirely is not taken, nor is
            any after it: such a box is not closed here; its bound or its children close it.
        faces: ``(dim, side)`` of each step tried, in order (side ``UPPER`` or ``LOWER``).
        values: ``(F, B)`` the new face of each tried step, NaN where it did not move.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    faces: tuple[tuple[int, int], ...]
    values: torch.Tensor

    @property
    def moved(self) -> torch.Tensor:
        """``(B,)`` bool, boxes at least one step moved."""
        return (self.values == self.values).any(dim=0)

    def steps(self, leaf: int) -> list[tuple[int, int, float]]:
        """The steps that moved a face of box ``leaf``: ``(dim, side, value)`` in order."""
        column = self.values[:, leaf].tolist()
        return [
            (dim, side, value)
            for (dim, side), value in zip(self.faces, column, strict=True)
            if value == value
        ]


def clip_boxes(
    lower: torch.Tensor,
    upper: torch.Tensor,
    A: torch.Tensor,
    c: torch.Tensor,
    rows: Rows,
    passes: int = 1,
) -> Clipped:
    """Clip boxes with the linear bounds ``C y >= A x + c`` of the unsafe rows.

    Args:
        lower, upper: ``(B, n)`` flat input boxes.
        A, c: ``(B, m, n)`` and ``(B, m)``, sound on each box (rounding accounted for).
        rows: the stacked unsafe polytopes (``m`` rows in all).
        passes: sweeps over the ``2 n`` faces.
    """
    lo, hi = lower.clone(), upper.clone()
    batch, n = lo.shape
    g = gamma(n + 2)
    d = rows.d.to(lo.dtype)
    empty = torch.zeros(batch, dtype=torch.bool)
    finite = torch.isfinite(A).all(dim=2) & torch.isfinite(c)
    faces, values = [], []
    for _ in range(passes):
        for dim in range(n):
            for side in (UPPER, LOWER):
                value = _step(lo, hi, A, c, d, rows.spans, finite, dim, side, g)
                moved = torch.isfinite(value) & ~empty
                if side == UPPER:
                    moved &= value < hi[:, dim]
                    gone = moved & (value <= lo[:, dim])
                    moved &= ~gone
                    hi[:, dim] = torch.where(moved, value, hi[:, dim])
                else:
                    moved &= value > lo[:, dim]
                    gone = moved & (value >= hi[:, dim])
                    moved &= ~gone
                    lo[:, dim] = torch.where(moved, value, lo[:, dim])
                empty |= gone
                faces.append((dim, side))
                values.append(torch.where(moved, value, torch.full_like(value, torch.nan)))
    return Clipped(lo, hi, tuple(faces), torch.stack(values))


def _step(lo, hi, A, c, d, spans, finite, dim: int, side: int, g: float) -> torch.Tensor:
    """``(B,)`` the farthest the face can move (NaN: not at all); see the module doc."""
    terms = torch.minimum(A * lo[:, None, :], A * hi[:, None, :])
    terms[:, :, dim] = 0.0
    size = c.abs() + terms.abs().sum(dim=2)
    rest = down(c + terms.sum(dim=2) - inflate(g * size, g))  # R, rounded down
    mu = MARGIN * (size + d.abs())
    a = A[:, :, dim]
    if side == UPPER:
        useful = finite & (a > 0)
        value = up(up(up(d + mu) - rest) / a)
        worst = torch.inf  # per polytope, the lowest face over its rows
    else:
        useful = finite & (a < 0)
        value = down(down(rest - up(d + mu)) / -a)
        worst = -torch.inf
    value = torch.where(useful & torch.isfinite(value), value, torch.full_like(value, worst))
    parts = []
    for start, end in spans:
        part = value[:, start:end]
        parts.append(part.min(dim=1).values if side == UPPER else part.max(dim=1).values)
    stacked = torch.stack(parts, dim=1)
    # every polytope must be excluded on the slab: the least move over the polytopes
    best = stacked.max(dim=1).values if side == UPPER else stacked.min(dim=1).values
    return torch.where(torch.isfinite(best), best, torch.full_like(best, torch.nan))
