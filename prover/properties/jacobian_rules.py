"""Jacobian transfer rules: one per op class, collected in :data:`JACOBIAN_RULES`.

A rule ``rule(op, out, *inputs) -> (lower, upper)`` receives the op, the interval bounds
``out`` of its own output value and the :class:`Dual` of each input, and returns interval
bounds of the output's Jacobian (``(B, *shape, n)``). Why the chain rule in interval form
is sound, also at kinks, is argued in :mod:`prover.properties.jacobian`; each rule states
its own inequality and rounding in a ``Soundness`` note or its docstring.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, replace

import numpy as np
import torch

from domains.interval.element import Interval
from domains.interval.transfer import conv2d, conv_terms, pool_terms, reduced_terms
from domains.rounding import (
    abs_constant,
    center_radius,
    dot_error,
    down,
    mul_bounds,
    up,
)
from prover.ir import ops
from prover.properties import derivatives
from prover.semantics import CONCRETE
from prover.tensors import constant

Bounds = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True, eq=False)
class Dual:
    """Bounds of a value (``(B, *shape)``) and of its Jacobian (``(B, *shape, n)``)."""

    value: Interval
    lower: torch.Tensor
    upper: torch.Tensor


# ------------------------------------------------------------------------ helpers


def clean(lo: torch.Tensor, hi: torch.Tensor) -> Bounds:
    """NaN means unknown: widen it to the infinite bound on its side."""
    return (
        torch.where(torch.isnan(lo), torch.full_like(lo, -math.inf), lo),
        torch.where(torch.isnan(hi), torch.full_like(hi, math.inf), hi),
    )


def fit(t: torch.Tensor, batch: int, shape: tuple[int, ...], extra: int) -> torch.Tensor:
    """Broadcast ``t`` (``(B, *s, *extra_axes)``) to ``(batch, *shape, *extra_axes)``."""
    rank = t.dim() - 1 - extra
    view = t.reshape((t.shape[0],) + (1,) * (len(shape) - rank) + tuple(t.shape[1:]))
    return view.expand((batch,) + tuple(shape) + tuple(t.shape[t.dim() - extra :]))


def _jac(x: Dual, batch: int, shape: tuple[int, ...]) -> Bounds:
    return fit(x.lower, batch, shape, 1), fit(x.upper, batch, shape, 1)


def _val(x: Dual, batch: int, shape: tuple[int, ...]) -> Bounds:
    lo, hi = derivatives.unbounded(x.value.lower, x.value.upper)
    return fit(lo, batch, shape, 0).unsqueeze(-1), fit(hi, batch, shape, 0).unsqueeze(-1)


def _signed(lo: torch.Tensor, hi: torch.Tensor, nonneg, nonpos) -> Bounds:
    """Clamp bounds to the sign that exact reasoning proves (undoes outward rounding
    across zero: a product or sum of non-negative reals is non-negative)."""
    zero = torch.zeros_like(lo)
    return torch.where(nonneg, torch.maximum(lo, zero), lo), torch.where(
        nonpos, torch.minimum(hi, zero), hi
    )


def _product(al, ah, bl, bh) -> Bounds:
    """Interval product rounded outward (Moore corners), then sign-clamped: the product
    of two intervals of the same sign is >= 0, of opposite signs <= 0."""
    lo, hi = mul_bounds(al, ah, bl, bh)
    nonneg = ((al >= 0) & (bl >= 0)) | ((ah <= 0) & (bh <= 0))
    nonpos = ((al >= 0) & (bh <= 0)) | ((ah <= 0) & (bl >= 0))
    return _signed(lo, hi, nonneg, nonpos)


def _hull0(lo: torch.Tensor, hi: torch.Tensor) -> Bounds:
    """``[0, 1] * [lo, hi]``: the hull of 0 and the interval (exact)."""
    zero = torch.zeros_like(lo)
    return torch.minimum(lo, zero), torch.maximum(hi, zero)


def _interval_sum(lo: torch.Tensor, hi: torch.Tensor, dims, keepdim: bool) -> Bounds:
    """Bounds of the exact sums of intervals over ``dims``, rounded outward."""
    dims = tuple(dims)
    n = math.prod(lo.shape[d] for d in dims) if dims else 1
    s_lo, s_hi = lo.sum(dim=dims, keepdim=keepdim), hi.sum(dim=dims, keepdim=keepdim)
    mag = torch.maximum(lo.abs(), hi.abs()).sum(dim=dims, keepdim=keepdim)
    err = dot_error(mag, n)
    return down(s_lo - err), up(s_hi + err)


def _to_batch(t: torch.Tensor) -> torch.Tensor:
    """``(B, *s, n)`` -> ``(B * n, *s)``: the input directions become batch rows."""
    moved = t.movedim(-1, 1)
    return moved.reshape((-1,) + tuple(moved.shape[2:]))


def _from_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """Inverse of :func:`_to_batch`."""
    return t.reshape((batch, -1) + tuple(t.shape[1:])).movedim(1, -1)


# -------------------------------------------------------------------------- rules


_SIGN_CACHE: dict[int, tuple[weakref.ref, np.ndarray, np.ndarray]] = {}


def _sign_parts(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indicators (0/1 arrays) of the positive and of the negative weights (cached per
    weight array, dropped when the array is garbage collected)."""
    key = id(weight)
    hit = _SIGN_CACHE.get(key)
    if hit is not None and hit[0]() is weight:
        return hit[1], hit[2]
    pos, neg = (weight > 0).astype(np.float64), (weight < 0).astype(np.float64)
    try:
        ref = weakref.ref(weight, lambda _, key=key: _SIGN_CACHE.pop(key, None))
    except TypeError:
        return pos, neg
    _SIGN_CACHE[key] = (ref, pos, neg)
    return pos, neg


def _linear(x: Dual, through, weight: np.ndarray, n_terms: int) -> Bounds:
    """A linear map without offset applied to the Jacobian (center/radius form).

    ``through(array)`` applies the map with the weights ``array``.

    Soundness: ``J in [c - r, c + r]`` exactly (:func:`center_radius`), so
    ``A J in [A c - |A| r, A c + |A| r]``; both products err by at most
    ``dot_error(|A| (|c| + r))`` (Higham, eq. 3.5), added outward. Sign clamp: when no
    term ``A_k J_k`` can be negative (no positive weight meets a possibly negative
    ``J_k``, no negative weight a possibly positive one) the exact sum is >= 0; counted
    exactly with 0/1 indicators (small integer sums). Likewise for <= 0.
    """
    abs_w = through(abs_constant(weight, x.lower))
    c, r = center_radius(x.lower, x.upper)
    value = through(constant(weight, x.lower))(c)
    err = dot_error(abs_w(up(c.abs() + r)), n_terms + 2)
    radius = up(abs_w(r) + err)
    lo, hi = down(value - radius), up(value + radius)
    pos_w, neg_w = _sign_parts(weight)
    pos = through(constant(pos_w, x.lower))
    neg = through(constant(neg_w, x.lower))
    may_neg = (x.lower < 0).to(lo.dtype)
    may_pos = (x.upper > 0).to(lo.dtype)
    nonneg = (pos(may_neg) + neg(may_pos)) == 0
    nonpos = (pos(may_pos) + neg(may_neg)) == 0
    return _signed(lo, hi, nonneg, nonpos)


def _gemm(op: ops.Gemm, out: Interval, x: Dual) -> Bounds:
    """``J' = W J`` over the last IR axis (the bias has no derivative)."""

    def through(weight: torch.Tensor):
        return lambda t: (t.transpose(-1, -2) @ weight.T).transpose(-1, -2)

    return _linear(x, through, op.weight, op.weight.shape[1])


def _conv(op: ops.Conv, out: Interval, x: Dual) -> Bounds:
    """``J' = conv(J)`` per input direction, without bias."""
    batch = x.lower.shape[0]

    def through(weight: torch.Tensor):
        return lambda t: _from_batch(conv2d(op, _to_batch(t), weight, None), batch)

    return _linear(x, through, op.weight, conv_terms(op))


def _identity(op: ops.Op, out: Interval, x: Dual) -> Bounds:
    """``AddConst``: ``J' = J`` (exact)."""
    return _jac(x, out.batch, out.shape)


def _scale_const(op: ops.MulConst, out: Interval, x: Dual) -> Bounds:
    """``J' = value * J``, products rounded outward (Moore corners)."""
    lo, hi = _jac(x, out.batch, out.shape)
    v = fit(constant(op.value, lo).unsqueeze(0), 1, out.shape, 0).unsqueeze(-1)
    return _product(v, v, lo, hi)


def _div_const(op: ops.DivConst, out: Interval, x: Dual) -> Bounds:
    """``J' = J / value``, quotients rounded outward."""
    lo, hi = _jac(x, out.batch, out.shape)
    v = fit(constant(op.value, lo).unsqueeze(0), 1, out.shape, 0).unsqueeze(-1)
    q1, q2 = lo / v, hi / v
    return down(torch.minimum(q1, q2)), up(torch.maximum(q1, q2))


def _neg(op: ops.Neg, out: Interval, x: Dual) -> Bounds:
    """``J' = -J`` (exact)."""
    lo, hi = _jac(x, out.batch, out.shape)
    return -hi, -lo


def _add(op: ops.Add, out: Interval, a: Dual, b: Dual) -> Bounds:
    """``J' = Ja + Jb`` with broadcasting, rounded outward."""
    (al, ah), (bl, bh) = _jac(a, out.batch, out.shape), _jac(b, out.batch, out.shape)
    return _signed(down(al + bl), up(ah + bh), (al >= 0) & (bl >= 0), (ah <= 0) & (bh <= 0))


def _sub(op: ops.Sub, out: Interval, a: Dual, b: Dual) -> Bounds:
    """``J' = Ja - Jb``, rounded outward."""
    (al, ah), (bl, bh) = _jac(a, out.batch, out.shape), _jac(b, out.batch, out.shape)
    return _signed(down(al - bh), up(ah - bl), (al >= 0) & (bh <= 0), (ah <= 0) & (bl >= 0))


def _mul(op: ops.Mul, out: Interval, a: Dual, b: Dual) -> Bounds:
    """Product rule ``J' = Ja b + a Jb`` in interval arithmetic, rounded outward."""
    (jal, jah), (jbl, jbh) = _jac(a, out.batch, out.shape), _jac(b, out.batch, out.shape)
    (avl, avh), (bvl, bvh) = _val(a, out.batch, out.shape), _val(b, out.batch, out.shape)
    t1 = _product(jal, jah, bvl, bvh)
    t2 = _product(avl, avh, jbl, jbh)
    lo, hi = down(t1[0] + t2[0]), up(t1[1] + t2[1])
    return _signed(lo, hi, (t1[0] >= 0) & (t2[0] >= 0), (t1[1] <= 0) & (t2[1] <= 0))


def _div(op: ops.Div, out: Interval, a: Dual, b: Dual) -> Bounds:
    """Quotient rule ``J' = (Ja - q Jb) / b`` with ``q = a / b`` (the output's bounds).

    Where the divisor's interval holds 0, ``1/b`` is unbounded: ``[-inf, inf]``.
    """
    (jal, jah), (jbl, jbh) = _jac(a, out.batch, out.shape), _jac(b, out.batch, out.shape)
    bvl, bvh = _val(b, out.batch, out.shape)
    ql, qh = derivatives.unbounded(out.lower, out.upper)
    ql, qh = ql.unsqueeze(-1), qh.unsqueeze(-1)
    away = (bvl > 0) | (bvh < 0)
    inf = torch.full_like(bvl, math.inf)
    inv_lo = torch.where(away, down(1.0 / bvh), -inf)
    inv_hi = torch.where(away, up(1.0 / bvl), inf)
    p_lo, p_hi = _product(ql, qh, jbl, jbh)
    d_lo, d_hi = _signed(
        down(jal - p_hi), up(jah - p_lo), (jal >= 0) & (p_hi <= 0), (jah <= 0) & (p_lo >= 0)
    )
    return _product(d_lo, d_hi, inv_lo, inv_hi)


def constant_rule(op: ops.ConstantOf, out: Interval, n: int) -> Bounds:
    zero = torch.zeros((1,) + out.shape + (n,), dtype=out.lower.dtype, device=out.lower.device)
    return zero, zero.clone()


def _relu(op: ops.Relu, out: Interval, x: Dual) -> Bounds:
    """Derivative 1 where the input is surely > 0, 0 where surely < 0, else ``[0, 1]``."""
    lo, hi = _jac(x, out.batch, out.shape)
    vl, vh = _val(x, out.batch, out.shape)
    h_lo, h_hi = _hull0(lo, hi)
    zero = torch.zeros_like(lo)
    return (
        torch.where(vl > 0, lo, torch.where(vh < 0, zero, h_lo)),
        torch.where(vl > 0, hi, torch.where(vh < 0, zero, h_hi)),
    )


def _leaky_relu(op: ops.LeakyRelu, out: Interval, x: Dual) -> Bounds:
    """Derivative 1 (input > 0), alpha (input < 0), else between them."""
    lo, hi = _jac(x, out.batch, out.shape)
    vl, vh = _val(x, out.batch, out.shape)
    a = torch.full((), op.alpha, dtype=lo.dtype, device=lo.device)
    s_lo, s_hi = _product(a, a, lo, hi)
    h_lo, h_hi = torch.minimum(lo, s_lo), torch.maximum(hi, s_hi)
    return (
        torch.where(vl > 0, lo, torch.where(vh < 0, s_lo, h_lo)),
        torch.where(vl > 0, hi, torch.where(vh < 0, s_hi, h_hi)),
    )


def _abs(op: ops.Abs, out: Interval, x: Dual) -> Bounds:
    """Derivative 1 (input > 0), -1 (input < 0), else ``[-1, 1]``."""
    lo, hi = _jac(x, out.batch, out.shape)
    vl, vh = _val(x, out.batch, out.shape)
    m = torch.maximum(lo.abs(), hi.abs())
    return (
        torch.where(vl > 0, lo, torch.where(vh < 0, -hi, -m)),
        torch.where(vl > 0, hi, torch.where(vh < 0, -lo, m)),
    )


def _clip(op: ops.Clip, out: Interval, x: Dual) -> Bounds:
    """Derivative 1 strictly inside ``(min, max)``, 0 strictly outside, else ``[0, 1]``."""
    lo, hi = _jac(x, out.batch, out.shape)
    vl, vh = _val(x, out.batch, out.shape)
    cmin = -math.inf if op.min is None else op.min
    cmax = math.inf if op.max is None else op.max
    inside = (vl > cmin) & (vh < cmax)
    outside = (vh < cmin) | (vl > cmax)
    h_lo, h_hi = _hull0(lo, hi)
    zero = torch.zeros_like(lo)
    return (
        torch.where(inside, lo, torch.where(outside, zero, h_lo)),
        torch.where(inside, hi, torch.where(outside, zero, h_hi)),
    )


def _smooth(op: ops.Op, out: Interval, x: Dual) -> Bounds:
    """``J' = f'(x) J`` with ``f'`` bounded by :mod:`prover.properties.derivatives`."""
    lo, hi = _jac(x, out.batch, out.shape)
    vl, vh = _val(x, out.batch, out.shape)
    dl, dh = derivatives.SMOOTH[op.name](vl, vh)
    return _product(dl, dh, lo, hi)


def _softmax(op: ops.Softmax, out: Interval, x: Dual) -> Bounds:
    """``J'_i = s_i (J_i - sum_k s_k J_k)`` along the axis, with ``s`` in ``[0, 1]``.

    Soundness: the exact derivative of softmax is ``ds_i = s_i (dz_i - sum_k s_k dz_k)``;
    each product and sum is enclosed in interval arithmetic rounded outward, with the
    output's interval bounds for ``s`` (clamped to [0, 1], the range of softmax).
    """
    lo, hi = _jac(x, out.batch, out.shape)
    sl = torch.where(torch.isnan(out.lower), torch.zeros_like(out.lower), out.lower)
    sh = torch.where(torch.isnan(out.upper), torch.ones_like(out.upper), out.upper)
    sl = fit(torch.clamp(sl, 0.0, 1.0), out.batch, out.shape, 0).unsqueeze(-1)
    sh = fit(torch.clamp(sh, 0.0, 1.0), out.batch, out.shape, 0).unsqueeze(-1)
    p_lo, p_hi = _product(sl, sh, lo, hi)
    t_lo, t_hi = _interval_sum(p_lo, p_hi, (op.axis + 1,), keepdim=True)
    d_lo, d_hi = down(lo - t_hi), up(hi - t_lo)
    return _product(sl, sh, d_lo, d_hi)


def _reduce(op: ops.ReduceSum, out: Interval, x: Dual) -> Bounds:
    """Sum (or mean) of the Jacobian rows over the reduced axes, rounded outward."""
    lo, hi = x.lower, x.upper
    dims = tuple(a + 1 for a in op.axes)
    s_lo, s_hi = _interval_sum(lo, hi, dims, keepdim=op.keepdims)
    if isinstance(op, ops.ReduceMean):
        count = float(reduced_terms(op, x.value.shape))
        s_lo, s_hi = down(s_lo / count), up(s_hi / count)
    return s_lo, s_hi


def _average_pool(op: ops.AveragePool, out: Interval, x: Dual) -> Bounds:
    """Averaging has non-negative weights: monotone, so it maps both bounds; the rounding
    of its sums and division is covered by ``dot_error`` of the map applied to |J|."""
    batch = x.lower.shape[0]
    rule = CONCRETE.rules[ops.AveragePool]
    lo_b, hi_b = _to_batch(x.lower), _to_batch(x.upper)
    mag = rule(op, torch.maximum(lo_b.abs(), hi_b.abs()))
    err = dot_error(mag, 2 * pool_terms(op) + 4)
    return (
        _from_batch(down(rule(op, lo_b) - err), batch),
        _from_batch(up(rule(op, hi_b) + err), batch),
    )


def _max_pool(op: ops.MaxPool, out: Interval, x: Dual) -> Bounds:
    """Each window's generalized derivative lies in the hull of its elements' (Clarke,
    Prop. 2.3.12): the max of the upper and the min of the lower bounds (exact)."""
    batch = x.lower.shape[0]
    rule = CONCRETE.rules[ops.MaxPool]
    hi = rule(op, _to_batch(x.upper))
    lo = -rule(op, -_to_batch(x.lower))
    return _from_batch(lo, batch), _from_batch(hi, batch)


def _structural(op: ops.Op, out: Interval, *xs: Dual) -> Bounds:
    """Reshape/Transpose/Slice/Gather/Pad/Concat move entries: apply them to each input
    direction of the Jacobian (padding constants have derivative 0). Exact."""
    if isinstance(op, ops.Pad):
        op = replace(op, value=0.0)
    rule = CONCRETE.rules[type(op)]
    batch = out.batch
    lows = [_to_batch(fit(x.lower, batch, x.value.shape, 1)) for x in xs]
    highs = [_to_batch(fit(x.upper, batch, x.value.shape, 1)) for x in xs]
    return _from_batch(rule(op, *lows), batch), _from_batch(rule(op, *highs), batch)


#: Jacobian rules: ``rule(op, output_value_interval, *input_duals) -> (lower, upper)``.
JACOBIAN_RULES = {
    ops.Gemm: _gemm,
    ops.Conv: _conv,
    ops.AddConst: _identity,
    ops.MulConst: _scale_const,
    ops.DivConst: _div_const,
    ops.Neg: _neg,
    ops.Add: _add,
    ops.Sub: _sub,
    ops.Mul: _mul,
    ops.Div: _div,
    ops.Relu: _relu,
    ops.LeakyRelu: _leaky_relu,
    ops.Sigmoid: _smooth,
    ops.Tanh: _smooth,
    ops.Exp: _smooth,
    ops.Log: _smooth,
    ops.Sqrt: _smooth,
    ops.Abs: _abs,
    ops.Clip: _clip,
    ops.Softmax: _softmax,
    ops.MaxPool: _max_pool,
    ops.AveragePool: _average_pool,
    ops.ReduceSum: _reduce,
    ops.ReduceMean: _reduce,
    ops.Reshape: _structural,
    ops.Transpose: _structural,
    ops.Concat: _structural,
    ops.Slice: _structural,
    ops.Gather: _structural,
    ops.Pad: _structural,
}
