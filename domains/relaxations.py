"""Scalar relaxations shared by the abstract domains.

Each relaxation bounds a scalar function ``f`` over an input interval ``[lb, ub]`` (torch
tensors, elementwise). Two shapes are used:

* a *parallelogram* ``(a, lo, hi)``: ``a x + lo <= f(x) <= a x + hi`` for x in [lb, ub]
  (DeepZ, Singh et al., "Fast and Effective Robustness Certification", NeurIPS 2018);
* a pair of *lines* ``(a_lo, b_lo, a_up, b_up)``: ``a_lo x + b_lo <= f(x) <= a_up x + b_up``
  for x in [lb, ub] (DeepPoly / CROWN style).

Every function states its inequality in a ``Soundness:`` paragraph and names the lemma
(``LEMMAS`` maps the lemma name to the function) that ``proofs/lemmas/`` proves by
machine. The lemma is about real numbers; each function additionally rounds its offsets
outward (:mod:`domains.rounding`) *for the slope it actually computed*, so a slope that
rounding moved a little is still sound. Values of ``exp``, ``tanh``, ``sigmoid``,
``cosh`` and ``log`` come from torch and are widened under the libm accuracy ASSUMPTION
stated in :mod:`domains.rounding`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from domains.rounding import (
    TINY,
    down,
    up,
    widen_libm_down,
    widen_libm_up,
)

Parallelogram = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _clamp0(lb: torch.Tensor, ub: torch.Tensor) -> torch.Tensor:
    return torch.minimum(torch.maximum(torch.zeros_like(lb), lb), ub)


def _leaky(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.where(x >= 0, x, alpha * x)


def leaky_relu_offset(
    lb: torch.Tensor, ub: torch.Tensor, slope: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``g(x) = leaky(x) - slope x`` over ``[lb, ub]`` (ReLU: ``alpha = 0``).

    Lemma: ``piecewise_linear_offset``.

    Soundness: ``leaky(x) = x`` for ``x >= 0`` and ``alpha x`` below, so ``g`` is linear
    on ``[lb, min(ub, 0)]`` and on ``[max(lb, 0), ub]``; a function linear on each of two
    pieces attains its extremes over ``[lb, ub]`` at ``lb``, ``ub`` or the kink ``0`` (when it
    lies inside), i.e. at ``lb``, ``ub`` and ``clamp(0, lb, ub)``. Each candidate is computed
    with outward rounding (``alpha x`` and ``slope x`` are single correctly rounded
    products; ``clamp`` is exact), for any computed ``slope``.
    """
    lows, highs = [], []
    for x in (lb, ub, _clamp0(lb, ub)):
        sx = slope * x
        fx = _leaky(x, alpha)
        if alpha != 0.0:
            f_lo, f_hi = down(fx), up(fx)
            f_lo = torch.where(x >= 0, x, f_lo)
            f_hi = torch.where(x >= 0, x, f_hi)
        else:
            f_lo = f_hi = fx
        lows.append(down(f_lo - up(sx)))
        highs.append(up(f_hi - down(sx)))
    lo = torch.minimum(torch.minimum(lows[0], lows[1]), lows[2])
    hi = torch.maximum(torch.maximum(highs[0], highs[1]), highs[2])
    return lo, hi


def leaky_relu_parallelogram(lb: torch.Tensor, ub: torch.Tensor, alpha: float) -> Parallelogram:
    """DeepZ minimal-area parallelogram of leaky ReLU (ReLU when ``alpha = 0``).

    Lemma: ``relu_deepz`` (the slope choice); its soundness is ``piecewise_linear_offset``
    (the offsets are exact bounds for whatever slope is chosen).

    Soundness: the slope is the chord slope ``(f(ub) - f(lb)) / (ub - lb)`` on unstable
    neurons (``lb < 0 < ub``; ``ub / (ub - lb)`` for ReLU, Singh et al. 2018, Theorem 3.1),
    ``1`` when ``lb >= 0`` and ``alpha`` when ``ub <= 0``; whatever value rounding gives,
    :func:`leaky_relu_offset` bounds ``f(x) - a x`` over ``[lb, ub]`` for that very ``a``.
    """
    unstable = (lb < 0) & (ub > 0)
    width = torch.where(unstable, ub - lb, torch.ones_like(lb))
    chord = (ub - alpha * lb) / width
    a = torch.where(lb >= 0, torch.ones_like(lb), torch.full_like(lb, alpha))
    a = torch.where(unstable, chord, a)
    lo, hi = leaky_relu_offset(lb, ub, a, alpha)
    return a, lo, hi


def monotone_offset(
    f_lo_at_l: torch.Tensor,
    f_hi_at_u: torch.Tensor,
    slope: torch.Tensor,
    lb: torch.Tensor,
    ub: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of ``g(x) = f(x) - slope x`` over ``[lb, ub]`` when ``f' >= slope`` there.

    Lemma: ``monotone_offset``.

    Soundness: if ``f'(x) >= slope`` on ``[lb, ub]`` then ``g' >= 0``, so ``g`` is
    nondecreasing and ``g(lb) <= g(x) <= g(ub)``; with ``f_lo_at_l <= f(lb)`` and
    ``f_hi_at_u >= f(ub)`` and outward-rounded products, ``[lo, hi]`` contains ``g(x)``.
    """
    lo = down(f_lo_at_l - up(slope * lb))
    hi = up(f_hi_at_u - down(slope * ub))
    return lo, hi


def sigmoid_min_slope(lb: torch.Tensor, ub: torch.Tensor) -> torch.Tensor:
    """A lower bound of ``min sigmoid'`` over ``[lb, ub]``.

    Lemma: ``sigmoid_slope``.

    Soundness: ``sigmoid'(x) = 1 / (4 cosh(x/2)^2)`` is even and decreasing in ``|x|``,
    so its minimum over ``[lb, ub]`` is at ``lb`` or ``ub``. We compute ``0.25 / up(C^2)`` with
    ``C >= cosh(x/2)`` (libm assumption), rounded down; ``x/2`` is exact above the
    subnormal range and ``cosh`` is flat near 0, where halving could round.
    """
    return torch.clamp(down(torch.minimum(_sech2_low(lb / 2), _sech2_low(ub / 2)) / 4), min=0.0)


def tanh_min_slope(lb: torch.Tensor, ub: torch.Tensor) -> torch.Tensor:
    """A lower bound of ``min tanh'`` over ``[lb, ub]``.

    Lemma: ``tanh_slope``.

    Soundness: ``tanh'(x) = 1 / cosh(x)^2`` is even and decreasing in ``|x|``: its minimum
    over ``[lb, ub]`` is at an endpoint; ``cosh`` is widened up (libm assumption), the square
    and the quotient are rounded outward.
    """
    return torch.minimum(_sech2_low(lb), _sech2_low(ub))


def _sech2_low(x: torch.Tensor) -> torch.Tensor:
    c = widen_libm_up(torch.cosh(x))
    return torch.clamp(down(1.0 / up(c * c)), min=0.0)


def sigmoid_parallelogram(lb: torch.Tensor, ub: torch.Tensor) -> Parallelogram:
    """DeepZ parallelogram of the logistic sigmoid.

    Lemma: ``sigmoid_slope`` and ``monotone_offset``.

    Soundness: slope ``a <= min(sigmoid'(lb), sigmoid'(ub)) = min_[lb,ub] sigmoid'`` (Singh et
    al. 2018, section 4), so ``sigmoid(x) - a x`` is nondecreasing on ``[lb, ub]`` and lies
    in ``[sigmoid(lb) - a lb, sigmoid(ub) - a ub]``, rounded outward.
    """
    a = sigmoid_min_slope(lb, ub)
    lo, hi = monotone_offset(
        widen_libm_down(torch.sigmoid(lb)), widen_libm_up(torch.sigmoid(ub)), a, lb, ub
    )
    return a, lo, hi


def tanh_parallelogram(lb: torch.Tensor, ub: torch.Tensor) -> Parallelogram:
    """DeepZ parallelogram of tanh (as :func:`sigmoid_parallelogram`).

    Lemma: ``tanh_slope`` and ``monotone_offset``.

    Soundness: ``a <= min_[lb,ub] tanh'``, so ``tanh(x) - a x`` is nondecreasing on
    ``[lb, ub]`` and lies in ``[tanh(lb) - a lb, tanh(ub) - a ub]``, rounded outward.
    """
    a = tanh_min_slope(lb, ub)
    lo, hi = monotone_offset(
        widen_libm_down(torch.tanh(lb)), widen_libm_up(torch.tanh(ub)), a, lb, ub
    )
    return a, lo, hi


def exp_parallelogram(lb: torch.Tensor, ub: torch.Tensor) -> Parallelogram:
    """DeepZ-style parallelogram of exp with the minimal slope ``exp(lb)``.

    Lemma: ``exp_slope`` and ``monotone_offset``.

    Soundness: ``exp' = exp`` is increasing, so ``exp'(x) >= exp(lb) >= a`` on ``[lb, ub]``
    for ``a`` a lower bound of ``exp(lb)`` (libm assumption, clamped at 0); then ``exp(x) -
    a x`` is nondecreasing on ``[lb, ub]``.
    """
    a = torch.clamp(widen_libm_down(torch.exp(lb)), min=0.0)
    lo, hi = monotone_offset(a, widen_libm_up(torch.exp(ub)), a, lb, ub)
    return a, lo, hi


def relu_triangle(lb: torch.Tensor, ub: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper line ``a x + b`` of the ReLU triangle relaxation over ``[lb, ub]``.

    Lemma: ``relu_triangle``.

    Soundness: for ``lb < 0 < ub`` the chord ``ub (x - lb) / (ub - lb)`` is above the convex
    ``relu`` on ``[lb, ub]`` (Ehlers 2017, "Formal Verification of Piece-Wise Linear
    Feed-Forward Neural Networks"); for stable neurons the line is ``x`` or ``0``. The
    offset is recomputed for the rounded slope as the maximum of ``relu(x) - a x`` at the
    candidates ``lb``, ``ub`` (:func:`leaky_relu_offset`, convex ``g``).
    """
    a, _, hi = leaky_relu_parallelogram(lb, ub, 0.0)
    return a, hi


def exp_lines(
    lb: torch.Tensor, ub: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear lower (tangent) and upper (chord) bounds of exp over ``[lb, ub]``.

    Lemma: ``exp_convex``.

    Soundness: for any ``a > 0``, ``min_x (e^x - a x) = a (1 - ln a)`` (at ``x = ln a``),
    so ``e^x >= a x + a (1 - ln a)`` for all real x; we take ``a`` near the tangent slope at
    the midpoint and round the offset down (libm assumption for ``log``). For the upper
    line, ``e^x - a x`` is convex, so its maximum over ``[lb, ub]`` is at ``lb`` or ``ub``: the
    chord slope with the offset ``max(e^lb - a lb, e^ub - a ub)`` rounded up is above ``e^x``.
    """
    mid = lb / 2 + ub / 2
    a_lo = torch.clamp(torch.exp(mid), min=TINY)
    one_minus_log = down(1.0 - widen_libm_up(torch.log(a_lo)))
    b_lo = down(a_lo * one_minus_log)
    e_l, e_u = widen_libm_up(torch.exp(lb)), widen_libm_up(torch.exp(ub))
    width = ub - lb
    a_up = torch.where(width > 0, (e_u - e_l) / torch.where(width > 0, width, 1.0), e_u)
    a_up = torch.clamp(a_up, min=0.0)
    b_up = torch.maximum(up(e_l - down(a_up * lb)), up(e_u - down(a_up * ub)))
    return a_lo, b_lo, a_up, b_up


def log_lines(
    lb: torch.Tensor, ub: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear lower (chord) and upper (tangent) bounds of log over ``[lb, ub]``, ``lb > 0``.

    Lemma: ``log_concave``.

    Soundness: for any ``a > 0``, ``max_{x>0} (ln x - a x) = -ln a - 1`` (at ``x = 1/a``),
    so ``ln x <= a x - ln a - 1``; we take ``a = 1/mid`` and round the offset up. ``ln x -
    a x`` is concave, so over ``[lb, ub]`` its minimum is at ``lb`` or ``ub``: the chord slope
    with offset ``min(ln lb - a lb, ln ub - a ub)`` rounded down is below ``ln``. For ``lb <= 0``
    the results are not finite (NaN or infinite), which callers treat as unknown.
    """
    mid = lb / 2 + ub / 2
    a_up = 1.0 / mid
    b_up = up(up(-widen_libm_down(torch.log(a_up))) - 1.0)
    g_l, g_u = widen_libm_down(torch.log(lb)), widen_libm_down(torch.log(ub))
    width = ub - lb
    a_lo = torch.where(width > 0, (g_u - g_l) / torch.where(width > 0, width, 1.0), a_up)
    b_lo = torch.minimum(down(g_l - up(a_lo * lb)), down(g_u - up(a_lo * ub)))
    return a_lo, b_lo, a_up, b_up


def softmax_interval(
    lower: torch.Tensor, upper: torch.Tensor, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval bounds of ``softmax`` along ``dim`` over the box ``[lower, upper]``.

    Lemma: ``softmax_interval``.

    Soundness: ``softmax_i(x) = e^{x_i} / (e^{x_i} + S_i)`` with ``S_i = sum_{j != i}
    e^{x_j}`` is increasing in ``x_i`` and decreasing in each other ``x_j``, so over the box
    ``e^{l_i} / (e^{l_i} + sum_{j!=i} e^{u_j}) <= softmax_i(x) <= e^{u_i} / (e^{u_i} +
    sum_{j!=i} e^{l_j})`` (the standard interval softmax bound, e.g. Shi et al. 2020,
    "Robustness Verification for Transformers"). All exponents are shifted by ``m =
    max_j u_j`` (exact cancellation over the reals); each shifted exponent is rounded
    outward, each ``exp`` widened (libm assumption), sums bounded with
    :func:`~domains.rounding.upper_sum` style error terms, and ``t / (t + S)`` is
    increasing in ``t``, so lower numerator over upper denominator is a lower bound.
    """
    from domains.rounding import dot_error  # local: keep the import list short

    m = upper.amax(dim=dim, keepdim=True)
    e_l_lo = torch.clamp(widen_libm_down(torch.exp(down(lower - m))), min=0.0)
    e_l_hi = widen_libm_up(torch.exp(up(lower - m)))
    e_u_lo = torch.clamp(widen_libm_down(torch.exp(down(upper - m))), min=0.0)
    e_u_hi = widen_libm_up(torch.exp(up(upper - m)))
    n = lower.shape[dim]
    sum_u_hi = e_u_hi.sum(dim=dim, keepdim=True)
    sum_u_hi = up(sum_u_hi + dot_error(sum_u_hi, n))
    sum_l_lo = e_l_lo.sum(dim=dim, keepdim=True)
    sum_l_lo = down(sum_l_lo - dot_error(sum_l_lo, n))
    others_hi = up(sum_u_hi - e_u_lo)  # >= sum_{j != i} e^{u_j - m}
    others_lo = torch.clamp(down(sum_l_lo - e_l_hi), min=0.0)  # <= sum_{j != i} e^{l_j - m}
    low = down(e_l_lo / up(e_l_hi + others_hi))
    high = up(e_u_hi / torch.clamp(down(e_u_lo + others_lo), min=0.0))
    low = torch.clamp(low, min=0.0, max=1.0)
    high = torch.clamp(high, min=0.0, max=1.0)
    # NaN must survive the clamps (torch.clamp propagates NaN): nothing more to do.
    return low, high


#: Lemma name -> the function whose soundness it states (proved in proofs/lemmas/).
LEMMAS: dict[str, Callable] = {
    "piecewise_linear_offset": leaky_relu_offset,
    "relu_deepz": leaky_relu_parallelogram,
    "relu_triangle": relu_triangle,
    "monotone_offset": monotone_offset,
    "sigmoid_slope": sigmoid_min_slope,
    "tanh_slope": tanh_min_slope,
    "exp_slope": exp_parallelogram,
    "exp_convex": exp_lines,
    "log_concave": log_lines,
    "softmax_interval": softmax_interval,
}

#: Lemma name -> the inequality over the reals that ``proofs/lemmas/`` proves (for all
#: reals lb <= x <= ub unless stated; exp, log, sigmoid, tanh, cosh are the real functions).
LEMMA_STATEMENTS: dict[str, str] = {
    "piecewise_linear_offset": (
        "for alpha, a real and f(x) = x if x >= 0 else alpha*x: f(x) - a*x >= "
        "min(g(lb), g(ub), g(c)) and <= max(g(lb), g(ub), g(c)) with g(t) = f(t) - a*t and "
        "c = min(max(0, lb), ub)"
    ),
    "relu_deepz": (
        "for lb < 0 < ub and a = ub/(ub - lb): 0 <= relu(x) - a*x <= -a*lb (the DeepZ "
        "parallelogram; offsets equal at both ends)"
    ),
    "relu_triangle": "for lb < 0 < ub: relu(x) <= ub*(x - lb)/(ub - lb)",
    "monotone_offset": (
        "if f'(t) >= a for all t in [lb, ub] then f(lb) - a*lb <= f(x) - a*x <= f(ub) - a*ub"
    ),
    "sigmoid_slope": (
        "sigmoid'(x) = 1/(4*cosh(x/2)^2) and sigmoid'(x) >= min(sigmoid'(lb), sigmoid'(ub))"
    ),
    "tanh_slope": "tanh'(x) = 1/cosh(x)^2 and tanh'(x) >= min(tanh'(lb), tanh'(ub))",
    "exp_slope": "exp'(x) = exp(x) >= exp(lb)",
    "exp_convex": (
        "for a > 0 and all real x: exp(x) >= a*x + a*(1 - log(a)); and for a real: "
        "exp(x) - a*x <= max(exp(lb) - a*lb, exp(ub) - a*ub)"
    ),
    "log_concave": (
        "for a > 0 and all x > 0: log(x) <= a*x - log(a) - 1; and for 0 < lb, a real: "
        "log(x) - a*x >= min(log(lb) - a*lb, log(ub) - a*ub)"
    ),
    "softmax_interval": (
        "for vectors l <= x <= u (n >= 2): exp(l_i)/(exp(l_i) + sum_{j != i} exp(u_j)) <= "
        "exp(x_i)/sum_j exp(x_j) <= exp(u_i)/(exp(u_i) + sum_{j != i} exp(l_j)); and "
        "shifting every exponent by the same m leaves both sides unchanged"
    ),
}
