"""Bounds of the derivatives of the IR's scalar elementwise functions over an interval.

Each function takes the input bounds ``low <= x <= high`` (float64 tensors, possibly infinite;
NaN is read as unbounded on that side) and returns ``(dl, du)`` with ``dl <= f'(x) <= du``
for every real ``x`` in ``[low, high]`` where ``f`` is differentiable, and, at the points
where it is not, ``[dl, du]`` contains Clarke's generalized derivative (the convex hull
of the limits of nearby derivatives). Where ``f'`` is unbounded on the interval the
bound is infinite, which the callers read as "nothing proved".

Rounding: ``down``/``up`` step one float outward after each correctly rounded operation;
values of ``sigmoid``, ``tanh`` and ``exp`` come from torch and are widened under the
libm accuracy ASSUMPTION of :mod:`domains.rounding`.
"""

from __future__ import annotations

import math

import torch

from domains.rounding import down, up, widen_libm_down, widen_libm_up


def unbounded(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace NaN bounds by the infinite bound on their side."""
    return (
        torch.where(torch.isnan(low), torch.full_like(low, -math.inf), low),
        torch.where(torch.isnan(high), torch.full_like(high, math.inf), high),
    )


def _far_near(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest and smallest ``|x|`` over ``[low, high]`` (exact)."""
    far = torch.maximum(low.abs(), high.abs())
    straddles = (low <= 0) & (high >= 0)
    near = torch.where(straddles, torch.zeros_like(low), torch.minimum(low.abs(), high.abs()))
    return far, near


def sigmoid(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``s'(x) = s(x) s(-x)``, an even function decreasing in ``|x|``.

    Soundness: the minimum over ``[low, high]`` is at the largest ``|x|`` and the maximum at
    the smallest ``|x|``; each factor is a libm value widened outward, the product is
    rounded outward, and ``0 <= s' <= 1/4`` clamps the result.
    """
    low, high = unbounded(low, high)
    far, near = _far_near(low, high)
    lo = down(widen_libm_down(torch.sigmoid(far)) * widen_libm_down(torch.sigmoid(-far)))
    hi = up(widen_libm_up(torch.sigmoid(near)) * widen_libm_up(torch.sigmoid(-near)))
    return torch.clamp(lo, min=0.0, max=0.25), torch.clamp(hi, min=0.0, max=0.25)


def tanh(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``tanh'(x) = 1 - tanh(x)^2``, even and decreasing in ``|x|``.

    Soundness: as for :func:`sigmoid`; ``tanh(|x|)`` is widened outward within [0, 1],
    squared and subtracted with outward rounding, and clamped to ``[0, 1]``.
    """
    low, high = unbounded(low, high)
    far, near = _far_near(low, high)
    t_far = torch.clamp(widen_libm_up(torch.tanh(far)), min=0.0, max=1.0)
    t_near = torch.clamp(widen_libm_down(torch.tanh(near)), min=0.0, max=1.0)
    lo = down(1.0 - up(t_far * t_far))
    hi = up(1.0 - down(t_near * t_near))
    return torch.clamp(lo, min=0.0, max=1.0), torch.clamp(hi, min=0.0, max=1.0)


def exp(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``exp'(x) = exp(x)``, increasing.

    Soundness: libm values at the ends widened outward (libm ASSUMPTION); ``exp > 0``.
    """
    low, high = unbounded(low, high)
    return torch.clamp(widen_libm_down(torch.exp(low)), min=0.0), widen_libm_up(torch.exp(high))


def log(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``log'(x) = 1/x`` for ``x > 0``; unbounded when ``low <= 0``.

    Soundness: ``1/x`` is decreasing on ``x > 0``; division is correctly rounded, so one
    step outward bounds each end. Where ``low <= 0`` the function is undefined or not
    Lipschitz, and the bound is ``[-inf, inf]``.
    """
    low, high = unbounded(low, high)
    ok = low > 0
    inf = torch.full_like(low, math.inf)
    lo = torch.where(ok, torch.clamp(down(1.0 / high), min=0.0), -inf)
    hi = torch.where(ok, up(1.0 / low), inf)
    return lo, hi


def sqrt(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``sqrt'(x) = 1 / (2 sqrt(x))`` for ``x > 0``; unbounded when ``low <= 0``.

    Soundness: decreasing on ``x > 0``; ``sqrt`` and ``/`` are correctly rounded, so the
    inner value is stepped one float toward the side that keeps the quotient outward.
    """
    low, high = unbounded(low, high)
    ok = low > 0
    inf = torch.full_like(low, math.inf)
    lo = torch.where(ok, torch.clamp(down(0.5 / up(torch.sqrt(high))), min=0.0), -inf)
    hi = torch.where(ok, up(0.5 / down(torch.sqrt(torch.clamp(low, min=0.0)))), inf)
    return lo, hi


#: Smooth elementwise ops: op class name -> derivative bounds.
SMOOTH = {
    "Sigmoid": sigmoid,
    "Tanh": tanh,
    "Exp": exp,
    "Log": log,
    "Sqrt": sqrt,
}
