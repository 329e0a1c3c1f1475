"""Branching heuristics: which input dimension or which ReLU neuron to split in a leaf.

Input splitting (low-dimensional inputs, e.g. ACAS Xu): the score of dimension ``i`` is
``width_i * sum_p |A_{p,i}|`` over the still-open polytopes ``p``, where ``A_p`` is the
coefficient row of the linear lower bound ``A x + c`` of the polytope's tightest row. It
estimates how much of the bound's looseness comes from the box's extent along ``i``
(``"sum"``: all rows of the open polytopes, the default of the search; ``"coef"``: only
each polytope's tightest row, which measured far worse on ACAS Xu). The coefficients
miss looseness that enters through unstable neurons' intercepts, so a dimension that
has become ``starve`` times wider than the chosen one is split instead (ACAS Xu property
1 needs this; comparing *absolute* widths, not widths relative to the root box, matters:
very narrow root dimensions must not count as starved). Without coefficients it falls
back to the widest side relative to the root box.

ReLU splitting (high-dimensional inputs, e.g. MNIST): among the unstable neurons
(``lower < 0 < upper``, not yet split) the score is the intercept of the triangle
relaxation's upper line, ``u * (-l) / (u - l)``: the largest vertical gap between the
relaxation and the ReLU, which a split removes entirely.

Ties are broken by the lowest index, so the search is deterministic.
"""

from __future__ import annotations

import torch

from prover.engine.leaves import LeafBounds, Rows, margins


def input_scores(
    lower: torch.Tensor,
    upper: torch.Tensor,
    root_width: torch.Tensor,
    bounds: LeafBounds,
    rows: Rows,
    open_polytopes: torch.Tensor,
    heuristic: str = "coef",
    starve: float = 0.0,
) -> torch.Tensor:
    """``(B, n_in)`` split scores; ``-inf`` where a dimension cannot be split further.

    Args:
        lower, upper: ``(B, n_in)`` the leaves' boxes (flat).
        root_width: ``(n_in,)`` widths of the root box.
        bounds: the leaves' bounds (``A`` is used when present).
        rows: the stacked unsafe polytopes.
        open_polytopes: ``(B, P)`` bool, polytopes not yet excluded on each leaf.
        heuristic: "coef" (the tightest row's coefficients per open polytope), "sum"
            (all rows of the open polytopes) or "width" (relative width only).
        starve: when positive, a dimension ``starve`` times wider than the one the
            scores pick is split instead.
    """
    width = upper - lower
    if bounds.A is not None and heuristic != "width":
        A = bounds.A.abs()
        gap = torch.nan_to_num(bounds.lower - rows.d, nan=-torch.inf)
        weight = torch.zeros_like(width)
        index = torch.arange(A.shape[0])
        for p, (start, end) in enumerate(rows.spans):
            if heuristic == "sum":
                part = A[:, start:end].sum(dim=1)
            else:
                part = A[index, gap[:, start:end].argmax(dim=1) + start]
            weight += part * open_polytopes[:, p : p + 1]
        score = width * weight
        # Dimensions the bound does not depend on still get a tiny share, so that a
        # leaf whose coefficients vanish (or are NaN) is still split somewhere.
        relative = width / torch.where(root_width > 0, root_width, torch.ones_like(root_width))
        score = torch.nan_to_num(score, nan=0.0, posinf=0.0) + 1e-12 * relative
    else:
        safe = torch.where(root_width > 0, root_width, torch.ones_like(root_width))
        score = width / safe
    middle = (lower + upper) / 2
    splittable = (middle > lower) & (middle < upper)
    score = torch.where(splittable, score, torch.full_like(score, -torch.inf))
    if starve > 0:
        # A dimension the coefficients ignore can still hold the relaxation's looseness
        # (through unstable neurons); once it is ``starve`` times wider than the
        # dimension the score picks, split it instead.
        relative = torch.where(splittable, width, torch.zeros_like(width))
        widest = relative.argmax(dim=1)
        picked = relative.gather(1, score.argmax(dim=1, keepdim=True)).squeeze(1)
        starved = relative.max(dim=1).values > starve * picked
        boosted = score.clone()
        boosted[torch.arange(score.shape[0]), widest] = torch.finfo(score.dtype).max
        score = torch.where(starved[:, None], boosted, score)
    return score


def choose_input_dims(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best dimension per leaf, and whether the leaf can be split at all."""
    best = scores.argmax(dim=1)
    ok = torch.isfinite(scores.gather(1, best[:, None]).squeeze(1))
    return best, ok


def relu_scores(
    intermediate: dict[str, tuple[torch.Tensor, torch.Tensor]],
    splits: dict[str, torch.Tensor],
    names: list[str],
    coefficients: dict[str, torch.Tensor] | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, total neurons)`` scores over the ReLUs ``names`` (concatenated in order).

    Without ``coefficients``: the intercept of the triangle's upper line,
    ``u (-l) / (u - l)`` (how loose the relaxation is, whatever its effect on the bound).

    With ``coefficients`` (ReLU input name -> ``(B, m, n)``, the coefficients of each
    ReLU's output in the bound of every row) and ``weights`` ``(B, m)`` (which rows
    matter: the rows still trying to exclude their polytope), the estimated gain of the
    split on the bound (in the spirit of BaBSR, Bunel et al. 2020): where the weighted
    coefficient ``lam`` is negative the bound uses the upper line, and splitting removes
    its intercept, ``-lam * u (-l) / (u - l)``. Neurons using the lower line score a
    small fraction of ``|lam|`` times the intercept, so ties still prefer the neurons the
    bound depends on. Scores only order the splits; any order keeps the search sound.

    Stable or already split neurons score ``-inf``.
    """
    parts = []
    for name in names:
        lo, up = intermediate[name]
        lo = lo.reshape(lo.shape[0], -1)
        up = up.reshape(up.shape[0], -1)
        fixed = splits[name] != 0
        unstable = (lo < 0) & (up > 0) & ~fixed
        gap = up * (-lo) / torch.clamp(up - lo, min=1e-300)
        if coefficients is not None and name in coefficients:
            lam = coefficients[name]
            w = weights if weights is not None else torch.ones(lam.shape[:2], dtype=lam.dtype)
            negative = torch.einsum("bm,bmn->bn", w, (-lam).clamp(min=0))
            magnitude = torch.einsum("bm,bmn->bn", w, lam.abs())
            gap = gap * (negative + 1e-3 * magnitude) + 1e-9 * gap
        score = torch.nan_to_num(gap, nan=-torch.inf)
        parts.append(torch.where(unstable, score, torch.full_like(score, -torch.inf)))
    return torch.cat(parts, dim=1)


def choose_relu(
    scores: torch.Tensor, sizes: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per leaf: (layer index, neuron index within the layer, whether any neuron is left)."""
    best = scores.argmax(dim=1)
    ok = torch.isfinite(scores.gather(1, best[:, None]).squeeze(1))
    offsets = torch.tensor([0] + sizes[:-1]).cumsum(0)
    ends = offsets + torch.tensor(sizes)
    layer = torch.searchsorted(ends, best, right=True)
    layer = torch.clamp(layer, max=len(sizes) - 1)
    return layer, best - offsets[layer], ok


def lookahead_scores(
    probe: LeafBounds,
    rows: Rows,
    lower: torch.Tensor,
    upper: torch.Tensor,
    base: torch.Tensor,
    cand: torch.Tensor,
    kind: str = "sum",
) -> torch.Tensor:
    """``(n, n_in)`` scores of probed splits (``-inf`` for dimensions not probed).

    A half's value is the sum over polytopes of ``min(lower - d, 0)`` (0 when excluded or
    infeasible); a candidate scores the sum of its two halves ("sum") or the worse half
    ("min", ties broken by the sum). ``probe`` is ordered as ``frontier.probe_leaves``.
    """
    n, c = cand.shape
    gap = margins(probe.lower, rows).clamp(max=0.0).sum(dim=1)
    if probe.infeasible is not None:
        gap = torch.where(probe.infeasible.reshape(-1), torch.zeros_like(gap), gap)
    halves = torch.nan_to_num(gap, nan=-1e300).reshape(n, c, 2)
    if kind == "min":
        gain = halves.min(dim=2).values + 1e-3 * halves.sum(dim=2)
    else:
        gain = halves.sum(dim=2)
    score = torch.full_like(base, -torch.inf)
    score[torch.arange(n)[:, None].expand(n, c), cand] = gain
    middle = (lower + upper) / 2
    keep = (middle > lower) & (middle < upper) & torch.isfinite(base)
    return torch.where(keep, score, torch.full_like(score, -torch.inf))
