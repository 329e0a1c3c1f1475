"""Witness search for the whole-model properties: random points, then gradient ascent.

Like :mod:`prover.engine.falsify`, this only proposes candidates, ranked by a score
(higher: closer to a violation) computed on our float64 semantics. Each property
confirms a candidate itself, independently (ONNX Runtime replay and an exact predicate),
before it reports VIOLATED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from prover import semantics
from prover.ir.graph import Graph
from prover.options import Options
from prover.properties.common import Deadline, box_tensors, random_points
from prover.spec.regions import Box

#: score(values) -> (B,) tensor; ``values`` is the output (B, ...) or, with keep, a dict.
Score = Callable[[object], torch.Tensor]


def _scores(graph: Graph, points: torch.Tensor, score: Score, keep: bool) -> torch.Tensor:
    values = semantics.run(graph, points, keep=keep)
    result = score(values)
    return torch.where(torch.isnan(result), torch.full_like(result, np.inf), result)


def candidates(
    graph: Graph,
    box: Box,
    score: Score,
    options: Options,
    deadline: Deadline,
    *,
    keep: bool = False,
    top: int = 8,
) -> Iterator[np.ndarray]:
    """Points of ``box`` ranked by ``score``: the best samples first, then PGD ascent.

    A generator: the caller stops as soon as one candidate is confirmed, so the ascent
    only runs when no sample was a witness.

    Args:
        graph: the network.
        box: where to search.
        score: differentiable score of the semantics' values (higher is better).
        options: ``seed``, ``random_samples``, ``pgd_steps``, ``pgd_restarts``.
        deadline: stop ascending when it passes.
        keep: give ``score`` every value (a dict) instead of the output only.
        top: number of candidates returned from the samples and from the ascent each.
    """
    generator = torch.Generator().manual_seed(options.seed)
    points = torch.as_tensor(random_points(box, max(options.random_samples, 1), generator))
    with torch.no_grad():
        scores = _scores(graph, points, score, keep)
    order = torch.argsort(scores, descending=True)
    for i in order[:top].tolist():
        yield points[i].numpy().copy()
    if options.pgd_steps <= 0 or options.pgd_restarts <= 0 or deadline.passed():
        return
    lower, upper = box_tensors(box)
    width = upper - lower
    starts = points[order[: options.pgd_restarts]].clone()
    x = starts.requires_grad_(True)
    for step in range(options.pgd_steps):
        if deadline.passed():
            break
        objective = score(semantics.run(graph, x, keep=keep))
        objective = torch.where(torch.isfinite(objective), objective, torch.zeros_like(objective))
        (grad,) = torch.autograd.grad(objective.sum(), x, allow_unused=True)
        if grad is None:
            break
        size = 0.25 * (1 - step / options.pgd_steps) + 0.01
        with torch.no_grad():
            x += size * width * torch.sign(grad)
            x.copy_(torch.max(torch.min(x, upper), lower))
    with torch.no_grad():
        final = x.detach()
        scores = _scores(graph, final, score, keep)
    order = torch.argsort(scores, descending=True)
    for i in order[:top].tolist():
        yield final[i].numpy().copy()
