"""Interval bound propagation (IBP): the ``interval`` domain's entry points.

See :mod:`domains` for the contract of :func:`bound_outputs` and :func:`bound_linear`.
"""

from __future__ import annotations

import math

import torch

from domains import Domain
from domains.interval.element import Interval
from domains.interval.transfer import TRANSFER
from domains.rounding import center_radius, linear_lower_bound
from prover.errors import RegionError, ShapeError
from prover.ir.graph import Graph
from prover.ir.interpreter import interpret


def check_box(graph: Graph, lower: torch.Tensor, upper: torch.Tensor) -> None:
    """Raise when ``lower``/``upper`` are not a batch of boxes for ``graph``'s input."""
    expected = tuple(graph.input_shape)
    for what, t in (("lower", lower), ("upper", upper)):
        if not isinstance(t, torch.Tensor):
            raise RegionError(f"box {what} bound must be a torch tensor, got {type(t).__name__}")
        if tuple(t.shape[1:]) != expected or t.dim() != len(expected) + 1:
            raise ShapeError(
                "input",
                graph.name,
                f"(B, {', '.join(map(str, expected))})",
                tuple(t.shape),
                f"box {what} bound",
            )
    if lower.dtype != torch.float64 or upper.dtype != torch.float64:
        # The rounding error bounds (domains.rounding) are for binary64 only.
        raise RegionError(f"box bounds must be float64 tensors, got {lower.dtype}/{upper.dtype}")
    if lower.shape != upper.shape:
        raise RegionError(
            f"box bounds differ in shape: {tuple(lower.shape)} vs {tuple(upper.shape)}"
        )
    if bool((lower > upper).any()):
        raise RegionError("inverted box: some lower bound exceeds its upper bound")


class NanGuard:
    """Record, per batch row, whether any intermediate bound was NaN.

    A NaN can be lost downstream (e.g. by a ``where``), which could leave a finite but
    wrong bound; the guard poisons the output rows whose computation ever saw a NaN.
    """

    def __init__(self, batch: int, device: torch.device) -> None:
        self.bad = torch.zeros(batch, dtype=torch.bool, device=device)

    def see(self, *tensors: torch.Tensor) -> None:
        """Mark the rows of ``tensors`` (batch-first, batch 1 broadcasts) that hold NaN."""
        for t in tensors:
            self.bad |= torch.isnan(t.reshape(t.shape[0], -1)).any(dim=1)  # (1,) broadcasts

    def poison(self, t: torch.Tensor) -> torch.Tensor:
        """Return ``t`` with the bad rows set to NaN (no host synchronisation)."""
        mask = self.bad.reshape((-1,) + (1,) * (t.dim() - 1))
        return torch.where(mask, torch.full_like(t, math.nan), t)


def propagate(graph: Graph, lower: torch.Tensor, upper: torch.Tensor) -> Interval:
    """The output interval of ``graph`` over each box (batch expanded, NaN-guarded)."""
    check_box(graph, lower, upper)
    guard = NanGuard(lower.shape[0], lower.device)

    def on_value(name: str, value: Interval) -> None:
        guard.see(value.lower, value.upper)

    out = interpret(graph, TRANSFER, {graph.input_name: Interval(lower, upper)}, on_value=on_value)
    shape = (lower.shape[0],) + tuple(out.shape)
    return Interval(guard.poison(out.lower.expand(shape)), guard.poison(out.upper.expand(shape)))


def bound_outputs(
    graph: Graph, lower: torch.Tensor, upper: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound bounds ``(B, *output_shape)`` of the outputs over each input box."""
    out = propagate(graph, lower, upper)
    return out.lower, out.upper


def bound_linear(
    graph: Graph, lower: torch.Tensor, upper: torch.Tensor, C: torch.Tensor
) -> torch.Tensor:
    """Sound lower bounds ``(B, m)`` of ``C @ flatten(y)`` over each input box."""
    out = propagate(graph, lower, upper)
    batch = out.lower.shape[0]
    c, r = center_radius(out.lower.reshape(batch, -1), out.upper.reshape(batch, -1))
    C = torch.as_tensor(C, dtype=c.dtype, device=c.device)
    return linear_lower_bound(C, c, r)


DOMAINS = {
    "interval": Domain(
        name="interval",
        table=TRANSFER,
        bound_outputs=bound_outputs,
        bound_linear=bound_linear,
        description="interval bound propagation with outward rounding",
    )
}
