"""alpha-CROWN: optimise the ReLU lower slopes of the final back-substitution.

Every slope vector in [0, 1] gives a sound bound (``relax.relu``), so any iterate of any
optimiser is sound; the optimiser only decides how tight. We run projected Adam on the
sum over rows of the lower bounds of ``C y`` (or, given :class:`Margins`, on what decides
a disjunction of polytopes: each polytope's best row), separately for every box of the
batch (the boxes do not interact, so one summed loss gives each box its own gradient),
and keep per box the iterate with the best objective. The returned bounds are exactly
the bounds of the returned slopes (a replay with them reproduces them); the first iterate
is the starting slopes, so the objective is never worse than plain CROWN's with those
slopes.
Intermediate bounds stay those of the heuristic slopes.

With ``beta``, the Lagrange multipliers of the ReLU split constraints (beta-CROWN,
``Analysis.back_substitute``) are optimised jointly, projected on ``beta >= 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from domains.linear.engine import Analysis


class _Adam:
    """Projected Adam (Kingma and Ba, 2015): each tensor is clamped to its own bounds.

    A few lines of our own instead of ``torch.optim.Adam``, whose first use imports
    torch's compiler stack (seconds).
    """

    def __init__(self, params, bounds, lr: float, moments=(0.9, 0.999), eps=1e-8):
        self.params, self.bounds, self.lr, self.moments, self.eps = params, bounds, lr, moments, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads) -> None:
        self.t += 1
        b1, b2 = self.moments
        for p, (lo, hi), g, m, v in zip(
            self.params, self.bounds, grads, self.m, self.v, strict=True
        ):
            if g is None:
                continue
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + self.eps)).clamp_(lo, hi)


@dataclass(frozen=True)
class Margins:
    """An objective for the slopes that matches the closing rule of a disjunction.

    A polytope ``{y: C_p y <= d_p}`` is unreachable on a box as soon as one of its rows
    has ``lower > d``; so what counts per polytope is its best row's margin ``lower -
    d``, and only while it is not positive (an excluded polytope needs nothing more).
    The objective per box is ``sum_p min(0, max_{r in p} (lower_r - d_r))``: the sum of
    the rows' bounds instead spreads the slopes' effort over rows that cannot close.

    Attributes:
        d: ``(m,)`` right-hand sides of the stacked rows of ``C``.
        spans: ``(start, end)`` row range of each polytope.
    """

    d: torch.Tensor
    spans: tuple[tuple[int, int], ...]

    def objective(self, lower: torch.Tensor) -> torch.Tensor:
        """``(B,)`` the objective of ``(B, m)`` bounds (-inf where one is not finite)."""
        gap = torch.where(torch.isfinite(lower), lower - self.d.to(lower), -torch.inf)
        best = torch.stack([gap[:, s:e].max(dim=1).values for s, e in self.spans], dim=1)
        return best.clamp(max=0.0).sum(dim=1)


def _start(analysis, lam, init, init_betas, beta):
    slopes = analysis.heuristic_slopes()
    for name, value in (init or {}).items():
        if name in slopes:
            slopes[name] = (
                torch.as_tensor(value, dtype=lam.dtype, device=lam.device)
                .reshape(-1, slopes[name].shape[1])
                .expand_as(slopes[name])
                .clamp(0.0, 1.0)
            )
    betas = {}
    if beta or init_betas:
        m = lam.shape[1]
        for name, split in analysis.splits.items():
            n = split[0].numel()
            value = (init_betas or {}).get(name)
            if value is None:
                value = torch.zeros((analysis.batch, m, n), dtype=lam.dtype, device=lam.device)
            betas[name] = torch.as_tensor(value, dtype=lam.dtype, device=lam.device).reshape(
                -1, m, n
            )
            betas[name] = betas[name].expand(analysis.batch, m, n).clamp(min=0.0)
    return slopes, betas


def optimise(
    analysis: Analysis,
    start: str,
    lam: torch.Tensor,
    *,
    steps: int = 20,
    lr: float = 0.1,
    init: Mapping[str, torch.Tensor] | None = None,
    beta: bool = False,
    init_betas: Mapping[str, torch.Tensor] | None = None,
    margins: Margins | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Optimise the ReLU lower slopes (and split multipliers) for ``lam . v(start)``.

    Args:
        analysis: the analysis of the batch (intermediate bounds already computed).
        start: the value whose linear function is bounded (the graph output).
        lam: ``(b, m, *shape)`` coefficients (``C``).
        steps: Adam steps (0: just evaluate the starting values).
        lr: Adam learning rate.
        init: warm-start slopes (ReLU input name -> ``(B, n)``); others start from the
            adaptive heuristic.
        beta: also optimise one multiplier per (box, row, split neuron), from 0.
        init_betas: warm-start multipliers (ReLU input name -> ``(B, m, n)``).
        margins: optimise :meth:`Margins.objective` instead of the sum of the bounds.

    Returns:
        ``(lower (B, m), slopes {name: (B, n)}, betas {name: (B, m, n)})``: the bounds
        are exactly those of the returned slopes and multipliers.
    """
    batch = analysis.batch
    slopes, betas = _start(analysis, lam, init, init_betas, beta)
    params = {name: s.detach().clone().requires_grad_(True) for name, s in slopes.items()}
    mults = {name: b.detach().clone().requires_grad_(beta) for name, b in betas.items()}
    best = {"slopes": {k: v.detach().clone() for k, v in params.items()}}
    best["betas"] = {k: v.detach().clone() for k, v in mults.items()}
    tensors = list(params.values()) + (list(mults.values()) if beta else [])
    bounds = [(0.0, 1.0)] * len(params) + ([(0.0, None)] * len(mults) if beta else [])
    optimiser = _Adam(tensors, bounds, lr) if tensors else None
    best_lower = None
    best_obj = torch.full((batch,), float("-inf"), dtype=lam.dtype, device=lam.device)
    for step in range(steps + 1):
        with torch.enable_grad():
            analysis.set_slopes(params)
            lower = analysis.lower_bound(start, lam, betas=mults)
            finite = torch.isfinite(lower)
            if margins is None:
                raw = torch.where(finite, lower, torch.zeros_like(lower)).sum(1)
            else:
                raw = margins.objective(lower)
            objective = torch.where(finite.all(1), raw, torch.full_like(raw, float("-inf")))
        with torch.no_grad():
            if best_lower is None:
                best_lower, best_obj = lower.detach().clone(), objective.detach().clone()
            else:
                better = objective > best_obj
                best_lower = torch.where(better.unsqueeze(1), lower.detach(), best_lower)
                best_obj = torch.where(better, objective.detach(), best_obj)
                for name, p in params.items():
                    best["slopes"][name] = torch.where(
                        better.unsqueeze(1), p.detach(), best["slopes"][name]
                    )
                for name, b in mults.items():
                    best["betas"][name] = torch.where(
                        better.reshape(-1, 1, 1), b.detach(), best["betas"][name]
                    )
        if step == steps or optimiser is None:
            break
        loss = -torch.where(torch.isfinite(raw), raw, 0.0).sum()
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        optimiser.step(grads)
    analysis.set_slopes(best["slopes"])
    return best_lower, best["slopes"], best["betas"]
