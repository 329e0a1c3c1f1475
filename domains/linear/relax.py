"""Elementwise linear relaxations ``sl x + tl <= f(x) <= su x + tu`` over ``[l, u]``.

Each function takes float64 tensors ``l <= u`` (any shape, batch first) and returns a
:class:`Relaxation` whose four tensors have that shape. Every relaxation is sound over the
reals for the *stored* float slopes: intercepts are computed from the stored slopes and
rounded outward (``floats.down`` / ``floats.up``), so no later rounding of the slope can
break it.

Transcendental functions (sigmoid, tanh) are evaluated by torch; the domain assumes their
float64 results are within a relative error of ``2**-40`` (thousands of ulps; libm and
torch's vectorised kernels are within a few ulps) and widens by that much.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from domains.linear.floats import down, up

#: assumed relative accuracy of torch's float64 sigmoid / tanh / cosh
TRANSCENDENTAL_REL_ERR = 2.0**-40


@dataclass(frozen=True)
class Relaxation:
    """Lower line ``sl x + tl`` and upper line ``su x + tu`` of ``f`` over ``[l, u]``."""

    sl: torch.Tensor
    tl: torch.Tensor
    su: torch.Tensor
    tu: torch.Tensor


def _chord_upper(
    slope: torch.Tensor, points: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """Smallest intercept ``t`` (rounded up) with ``f(e) <= slope e + t`` at every point.

    ``points`` are pairs ``(e, f_up(e))`` with ``f_up(e) >= f(e)``. For a convex piecewise
    function whose pieces' ends are among the points, the line then lies above ``f`` on
    the whole interval (a convex function lies below any line that is above it at the ends
    of each piece on which it is linear or convex).

    Soundness: ``down(fl(s e)) <= s e`` exactly, so ``up(fl(f_up(e) - down(fl(s e))))``
    is at least ``f(e) - s e`` over the reals.
    """
    t = None
    for e, fe in points:
        cand = up(fe - down(slope * e))
        t = cand if t is None else torch.maximum(t, cand)
    return t


def _chord_lower(
    slope: torch.Tensor, points: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """Largest intercept (rounded down) with ``f(e) >= slope e + t``; ``points`` hold f_down."""
    t = None
    for e, fe in points:
        cand = down(fe - up(slope * e))
        t = cand if t is None else torch.minimum(t, cand)
    return t


def relu(
    lb: torch.Tensor,
    ub: torch.Tensor,
    lower_slope: torch.Tensor | None = None,
    split: torch.Tensor | None = None,
) -> Relaxation:
    """ReLU relaxation (triangle), with optional lower slopes and split constraints.

    Args:
        lb, ub: pre-activation bounds (already clamped by ``split``).
        lower_slope: slopes of the lower line for unstable neurons, clamped to [0, 1];
            None: the adaptive heuristic (1 where ``u > -l`` else 0).
        split: int8 tensor, -1 forced inactive, +1 forced active, 0 free (or None).

    Soundness: ``relu(x) >= a x`` for every real ``x`` when ``0 <= a <= 1`` (intercept
    0, exact). For ``l < 0 < u`` the upper line uses the stored slope ``s ~ u / (u - l)``
    and the intercept from :func:`_chord_upper` at ``l, 0, u`` (ReLU is convex and linear
    on [l, 0] and [0, u]). Stable neurons (``l >= 0`` or ``u <= 0``) and decided splits
    use the exact function (slope 1 or 0, intercept 0); a split's constraint holds on the
    region by definition, so the exact function is valid there.
    """
    zero = torch.zeros_like(lb)
    active = lb >= 0
    inactive = ub <= 0
    if split is not None:
        active = active | (split > 0)
        inactive = (inactive | (split < 0)) & ~active
    unstable = ~(active | inactive)
    denom = torch.where(unstable, ub - lb, torch.ones_like(lb))
    su_unstable = torch.where(unstable, ub / denom, zero)
    tu_unstable = _chord_upper(
        su_unstable,
        [(torch.where(unstable, lb, zero), zero), (zero, zero), (ub.clamp(min=0), ub.clamp(min=0))],
    )
    if lower_slope is None:
        lower_slope = (ub > -lb).to(lb.dtype)
    else:
        lower_slope = lower_slope.clamp(0.0, 1.0)
    one = torch.ones_like(lb)
    sl = torch.where(active, one, torch.where(unstable, lower_slope, zero))
    su = torch.where(active, one, su_unstable)
    tu = torch.where(unstable, tu_unstable, zero)
    return Relaxation(sl, zero, su, tu)


def leaky_relu(lb: torch.Tensor, ub: torch.Tensor, alpha: float) -> Relaxation:
    """LeakyReLU ``x if x >= 0 else alpha x`` relaxation, for any real ``alpha``.

    Soundness: for ``alpha <= 1`` the function is convex: ``f(x) >= a x`` for every x when
    ``alpha <= a <= 1`` (check both pieces), and the chord above is built by
    :func:`_chord_upper` at ``l, 0, u`` with ``f`` rounded up. For ``alpha > 1`` it is
    concave: ``f(x) <= a x`` for ``1 <= a <= alpha`` and the chord below comes from
    :func:`_chord_lower`. Stable intervals use the exact line (slope 1 or alpha).
    """
    zero = torch.zeros_like(lb)
    one = torch.ones_like(lb)
    a = torch.full_like(lb, alpha)
    pos = lb >= 0
    neg = ub <= 0
    unstable = ~(pos | neg)
    lc = torch.where(unstable, lb, zero)
    uc = torch.where(unstable, ub, zero)
    fl_exact = alpha * lc  # may be rounded; bracket it
    denom = torch.where(unstable, uc - lc, one)
    chord = torch.where(unstable, (uc - fl_exact) / denom, zero)
    heuristic = torch.where(ub > -lb, one, a)
    if alpha <= 1.0:
        t = _chord_upper(chord, [(lc, up(fl_exact)), (zero, zero), (uc, uc)])
        sl, tl, su, tu = heuristic, zero, chord, t
    else:
        t = _chord_lower(chord, [(lc, down(fl_exact)), (zero, zero), (uc, uc)])
        sl, tl, su, tu = chord, t, heuristic, zero
    stable_slope = torch.where(pos, one, a)
    return Relaxation(
        torch.where(unstable, sl, stable_slope),
        torch.where(unstable, tl, zero),
        torch.where(unstable, su, stable_slope),
        torch.where(unstable, tu, zero),
    )


def _f_bounds(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    margin = y.abs() * TRANSCENDENTAL_REL_ERR
    return down(y - margin), up(y + margin)


def sigmoid_value_bounds(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rigorous lower and upper bounds of sigmoid(x) at float points x."""
    return _f_bounds(torch.sigmoid(x))


def tanh_value_bounds(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rigorous lower and upper bounds of tanh(x) at float points x."""
    return _f_bounds(torch.tanh(x))


def _parallelogram(lb, ub, f_bounds, derivative) -> Relaxation:
    """Two parallel lines with slope ``s <= min f'`` on [l, u] (sigmoid, tanh).

    Soundness: sigmoid' and tanh' are unimodal with their maximum at 0, so their minimum
    over [l, u] is at an endpoint; ``s`` is that minimum shrunk by a relative ``2**-30``
    (far more than the evaluation error) and clamped at 0, so ``s <= f'`` on [l, u]. Then
    ``g(x) = f(x) - s x`` is non-decreasing on [l, u]: ``g(l) <= g(x) <= g(u)``, i.e.
    ``s x + (f(l) - s l) <= f(x) <= s x + (f(u) - s u)``; the intercepts use rigorous
    bounds of ``f(l)``, ``f(u)`` and are rounded outward by :func:`_chord_lower` /
    :func:`_chord_upper` (with a single point each).
    """
    s = torch.minimum(derivative(lb), derivative(ub)) * (1.0 - 2.0**-30)
    s = torch.nan_to_num(s, nan=0.0).clamp(min=0.0)
    fl_lo, _ = f_bounds(lb)
    _, fu_hi = f_bounds(ub)
    tl = _chord_lower(s, [(lb, fl_lo)])
    tu = _chord_upper(s, [(ub, fu_hi)])
    return Relaxation(s, tl, s, tu)


def _tangent_chord(lb, ub, f_bounds, derivative) -> Relaxation:
    """Chord and tangent where ``f`` is convex (``u <= 0``) or concave (``l >= 0``) on
    [l, u]; elsewhere (``l < 0 < u``) the parallelogram of :func:`_parallelogram`.

    Soundness (convex case; the concave one is its mirror image): with any slope ``c``
    (the chord's, as computed), ``f(x) - c x`` is convex, so its maximum over [l, u] is at
    an endpoint and :func:`_chord_upper` at ``l`` and ``u`` (with ``f`` rounded up) gives
    a line above ``f``. Below: at the midpoint ``p`` take ``s = fl(f'(p))`` and
    ``g(x) = f(x) - s x``, convex, so ``g(x) >= g(p) + g'(p) (x - p)`` and
    ``g'(p) = f'(p) - s`` is at most ``e = 2**-30 |s| + 2**-1000`` in size (far more than
    the evaluation error of ``f'``, including underflow); hence ``g(x) >= g(p) - e D``
    with ``D = max(p - l, u - p)``,
    and :func:`_chord_lower` at ``p`` with ``f(p)`` lowered by that amount gives a line
    below ``f``. All intercepts are rounded outward.
    """
    box = _parallelogram(lb, ub, f_bounds, derivative)
    convex = ub <= 0
    concave = (lb >= 0) & ~convex
    one = torch.ones_like(lb)
    width = ub - lb
    f_lo_l, f_hi_l = f_bounds(lb)
    f_lo_u, f_hi_u = f_bounds(ub)
    f_mid = torch.where(width > 0, (f_lo_u - f_lo_l) / torch.where(width > 0, width, one), 0.0)
    chord = torch.nan_to_num(f_mid, nan=0.0).clamp(min=0.0)
    p = lb / 2 + ub / 2
    s = torch.nan_to_num(derivative(p), nan=0.0).clamp(min=0.0)
    spread = up(up(torch.maximum(p - lb, ub - p)) * up(s * 2.0**-30 + 2.0**-1000))
    f_lo_p, f_hi_p = f_bounds(p)
    tangent_lo = _chord_lower(s, [(p, down(f_lo_p - spread))])
    tangent_hi = _chord_upper(s, [(p, up(f_hi_p + spread))])
    chord_hi = _chord_upper(chord, [(lb, f_hi_l), (ub, f_hi_u)])
    chord_lo = _chord_lower(chord, [(lb, f_lo_l), (ub, f_lo_u)])

    def pick(convex_value, concave_value, other):
        return torch.where(convex, convex_value, torch.where(concave, concave_value, other))

    return Relaxation(
        pick(s, chord, box.sl),
        pick(tangent_lo, chord_lo, box.tl),
        pick(chord, s, box.su),
        pick(chord_hi, tangent_hi, box.tu),
    )


def sigmoid(lb: torch.Tensor, ub: torch.Tensor) -> Relaxation:
    """Sigmoid relaxation: tangent and chord (see :func:`_tangent_chord`)."""
    return _tangent_chord(
        lb, ub, sigmoid_value_bounds, lambda x: torch.sigmoid(x) * torch.sigmoid(-x)
    )


def tanh(lb: torch.Tensor, ub: torch.Tensor) -> Relaxation:
    """Tanh relaxation: tangent and chord; ``tanh'(x) = 1 / cosh(x)**2``."""
    return _tangent_chord(lb, ub, tanh_value_bounds, lambda x: torch.cosh(x).reciprocal() ** 2)


#: Machine proof (``proofs/lemmas/``) of each relaxation above, by lemma name: the ReLU
#: triangle with any lower slope in [0, 1], its leaky analogue, and the tangent/chord (or
#: parallel-line) bounds of sigmoid and tanh, whose intercepts are recomputed from the
#: slope actually used (``piecewise_linear_offset`` / ``monotone_offset``).
LEMMAS: dict[str, Callable] = {
    "relu_triangle": relu,
    "leaky_relu": leaky_relu,
    "piecewise_linear_offset": leaky_relu,
    "sigmoid_tangent_chord": sigmoid,
    "tanh_tangent_chord": tanh,
    "monotone_offset": _parallelogram,
}
