"""Counterexample search inside branch-and-bound leaves (concrete semantics only).

:func:`violation` measures how far outputs are from the unsafe set: for each polytope the
largest ``C_r y - d_r`` over its rows (``<= 0``: inside), minimised over polytopes.
:func:`descend` runs a few steps of projected sign-gradient descent on that measure from
given starting points, each confined to its own leaf box. Nothing here decides anything:
every point it returns is only a candidate for the caller's exact replay.
"""

from __future__ import annotations

import torch

from prover import semantics
from prover.engine.leaves import Rows
from prover.ir.graph import Graph


def violation(y: torch.Tensor, rows: Rows) -> torch.Tensor:
    """``(N,)``: min over polytopes of max over rows of ``C_r y - d_r`` (NaN -> +inf)."""
    values = y.reshape(y.shape[0], -1) @ rows.C.T - rows.d
    per = torch.stack([values[:, s:e].max(dim=1).values for s, e in rows.spans], dim=1)
    return torch.nan_to_num(per.min(dim=1).values, nan=torch.inf)


def descend(
    graph: Graph,
    start: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    rows: Rows,
    steps: int = 10,
) -> torch.Tensor:
    """Projected sign-gradient descent on :func:`violation`, each point in its own box.

    Args:
        graph: the network.
        start, lower, upper: ``(N, n_in)`` flat starting points and their boxes.
        rows: the stacked unsafe polytopes.
        steps: gradient steps (the step shrinks from a quarter of the box width).

    Returns:
        ``(N, n_in)`` the final points (inside their boxes).
    """
    shape = tuple(graph.input_shape)
    x = start.clone()
    width = upper - lower
    for step in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            y = semantics.run(graph, x.reshape(-1, *shape))
            loss = violation(y, rows)
            grad = torch.autograd.grad(torch.where(torch.isfinite(loss), loss, 0.0).sum(), x)[0]
        size = width * (0.25 * (1.0 - step / steps))
        x = torch.minimum(torch.maximum(x.detach() - size * grad.sign(), lower), upper)
    return x.detach()
