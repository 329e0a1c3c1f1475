"""alpha-CROWN: optimise the ReLU lower slopes of the final back-substitution.

Every slope vector in [0, 1] gives a sound bound (``relax.relu``), so any iterate of any
optimiser is sound; the optimiser only decides how tight. We run projected Adam on the
sum over rows of the lower bounds of ``C y``, separately for every box of the batch (the
boxes do not interact, so one summed loss gives each box its own gradient), and keep per
box the iterate with the best objective. The returned bounds are exactly the bounds of
the returned slopes (a replay with them reproduces them); the first iterate is the
starting slopes, so the result is never worse than plain CROWN with those slopes.
Intermediate bounds stay those of the heuristic slopes.
"""

from __future__ import annotations

from typing import Mapping

import torch

from domains.linear.engine import Analysis


def optimise(
    analysis: Analysis,
    start: str,
    lam: torch.Tensor,
    *,
    steps: int = 20,
    lr: float = 0.1,
    init: Mapping[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Optimise the lower slopes of every ReLU for ``lam . v(start)``.

    Args:
        analysis: the analysis of the batch (intermediate bounds already computed).
        start: the value whose linear function is bounded (the graph output).
        lam: ``(b, m, *shape)`` coefficients (``C``).
        steps: Adam steps (0: just evaluate the starting slopes).
        lr: Adam learning rate.
        init: warm-start slopes (ReLU input name -> ``(B, n)``); others start from the
            adaptive heuristic.

    Returns:
        ``(lower (B, m), slopes {ReLU input name: (B, n)})``.
    """
    batch = analysis.batch
    start_slopes = analysis.heuristic_slopes()
    for name, value in (init or {}).items():
        if name in start_slopes:
            start_slopes[name] = (
                torch.as_tensor(value, dtype=lam.dtype).reshape(-1, start_slopes[name].shape[1])
                .expand_as(start_slopes[name])
                .clamp(0.0, 1.0)
            )
    params = {name: s.detach().clone().requires_grad_(True) for name, s in start_slopes.items()}
    best_slopes = {name: s.detach().clone() for name, s in start_slopes.items()}
    best_lower = None
    best_obj = torch.full((batch,), float("-inf"), dtype=lam.dtype, device=lam.device)
    optimiser = torch.optim.Adam(list(params.values()), lr=lr) if params else None
    for step in range(steps + 1):
        with torch.enable_grad():
            analysis.set_slopes(params)
            lower = analysis.lower_bound(start, lam)
            finite = torch.isfinite(lower)
            objective = torch.where(finite, lower, torch.zeros_like(lower)).sum(1)
            objective = torch.where(finite.all(1), objective, torch.full_like(objective, float("-inf")))
        with torch.no_grad():
            if best_lower is None:
                best_lower = lower.detach().clone()
                best_obj = objective.detach().clone()
            else:
                better = objective > best_obj
                best_lower = torch.where(better.unsqueeze(1), lower.detach(), best_lower)
                best_obj = torch.where(better, objective.detach(), best_obj)
                for name, p in params.items():
                    best_slopes[name] = torch.where(better.unsqueeze(1), p.detach(), best_slopes[name])
        if step == steps or optimiser is None:
            break
        loss = -torch.where(finite, lower, torch.zeros_like(lower)).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            for p in params.values():
                p.clamp_(0.0, 1.0)
    analysis.set_slopes(best_slopes)
    return best_lower, best_slopes
