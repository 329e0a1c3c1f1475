"""Counterexample search: uniform random sampling and PGD inside the input box.

The search runs on our float64 semantics (torch, with autograd for PGD). It minimises,
for each unsafe polytope ``C y <= d``, the margin ``max_rows(C y - d)``: a point with
margin <= 0 lies in the unsafe set. Candidates are only *candidates*: the caller
confirms each one independently (ONNX Runtime replay, strict box containment, the
property's exact predicate) before reporting a violation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from prover import semantics
from prover.ir.graph import Graph
from prover.spec.properties import Polytope
from prover.spec.regions import Box

log = logging.getLogger(__name__)


def _margins(y: torch.Tensor, polytopes: tuple[Polytope, ...]) -> torch.Tensor:
    """(B, P): for each point and polytope, max over rows of C y - d (<= 0: inside)."""
    flat = y.reshape(y.shape[0], -1)
    columns = []
    for poly in polytopes:
        C = torch.tensor(poly.C, dtype=flat.dtype)
        d = torch.tensor(poly.d, dtype=flat.dtype)
        columns.append((flat @ C.T - d).max(dim=1).values)
    return torch.stack(columns, dim=1)


def box_points(
    lower: torch.Tensor, upper: torch.Tensor, count: int, generator: torch.Generator
) -> torch.Tensor:
    """``(B, count, n)`` random points of each box ``[lower[b], upper[b]]`` (``(B, n)``).

    Half are uniform; in the other half each coordinate is, with probability 1/4, put
    on one of its box's two faces (chosen evenly). Violations of ACAS Xu-like networks
    often hide in thin slabs along a face of the region (e.g. ACAS Xu 1_9 with property
    7: within 0.5% of the lower bound of the first input), which uniform sampling hits
    about once in a million points and face sampling about once in ten thousand.
    """
    shape = (lower.shape[0], count, lower.shape[1])
    u = torch.rand(shape, generator=generator, dtype=lower.dtype)
    face = torch.rand(shape, generator=generator, dtype=lower.dtype)
    snap = (face < 0.25) & (torch.arange(count).reshape(1, -1, 1) % 2 == 1)
    u = torch.where(snap, (face < 0.125).to(u.dtype), u)
    return lower.unsqueeze(1) + (upper - lower).unsqueeze(1) * u


def search(
    graph: Graph,
    box: Box,
    polytopes: tuple[Polytope, ...],
    confirm: Callable[[np.ndarray], np.ndarray | None],
    *,
    seed: int,
    samples: int,
    pgd_steps: int,
    pgd_restarts: int,
    deadline: float,
) -> np.ndarray | None:
    """Search ``box`` for an input whose output enters an unsafe polytope.

    Args:
        graph: the network.
        box: the input box (shape = graph input shape).
        polytopes: the unsafe polytopes (a disjunction).
        confirm: exact, independent check of a candidate; returns the replayed input
            (as ONNX Runtime ran it) to accept it, None to reject.
        seed: random seed.
        samples: number of uniform random points.
        pgd_steps: steps per PGD restart.
        pgd_restarts: number of restarts (the box center is always one start).
        deadline: ``time.monotonic()`` value after which the search stops.

    Returns:
        A confirmed counterexample (as returned by ``confirm``) or None.
    """
    generator = torch.Generator().manual_seed(seed)
    lower = torch.tensor(box.lower, dtype=torch.float64).unsqueeze(0)
    upper = torch.tensor(box.upper, dtype=torch.float64).unsqueeze(0)
    width = upper - lower

    def try_points(points: torch.Tensor) -> np.ndarray | None:
        with torch.no_grad():
            margins = _margins(semantics.run(graph, points), polytopes).min(dim=1).values
        order = torch.argsort(margins)
        for i in order[:8].tolist():
            if margins[i] > 0 or time.monotonic() > deadline:
                break
            accepted = confirm(points[i].numpy())
            if accepted is not None:
                return accepted
        return None

    if samples > 0:
        flat = box_points(lower.reshape(1, -1), upper.reshape(1, -1), samples, generator)
        points = flat.reshape((samples,) + tuple(box.shape))
        points = torch.cat([points, (lower + upper) / 2, lower, upper])
        found = try_points(points)
        if found is not None:
            return found
    if pgd_steps <= 0 or pgd_restarts <= 0 or time.monotonic() > deadline:
        return None
    starts = lower + width * torch.rand(
        (pgd_restarts,) + tuple(box.shape), generator=generator, dtype=torch.float64
    )
    starts[0] = ((lower + upper) / 2)[0]
    x = starts.clone().requires_grad_(True)
    for step in range(pgd_steps):
        if time.monotonic() > deadline:
            break
        margins = _margins(semantics.run(graph, x), polytopes).min(dim=1).values
        (grad,) = torch.autograd.grad(margins.sum(), x)
        step_size = 0.25 * (1 - step / pgd_steps) + 0.01
        with torch.no_grad():
            x -= step_size * width * torch.sign(grad)
            x.copy_(torch.max(torch.min(x, upper), lower))
        if step % 5 == 4 or step == pgd_steps - 1:
            found = try_points(x.detach().clone())
            if found is not None:
                return found
    return None
