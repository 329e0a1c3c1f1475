"""Interval transfer functions: one per op class, collected in :data:`TRANSFER`.

Every rule maps input :class:`~domains.interval.element.Interval` s to an interval that
contains the op's output over the reals for every input in the input intervals, and also
the output computed in float64 by :mod:`prover.semantics` (the rounding error bounds of
:mod:`domains.rounding` cover both). NaN in a bound means "unknown".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from domains.interval.element import Interval
from domains.relaxations import softmax_interval
from domains.rounding import (
    abs_constant,
    center_radius,
    dot_error,
    down,
    mul_bounds,
    up,
    widen_libm_down,
    widen_libm_up,
)
from prover.ir import ops
from prover.ir.interpreter import Table
from prover.semantics import CONCRETE, conv_padding
from prover.tensors import constant

# ----------------------------------------------------------------- shared linear helpers


def conv2d(
    op: ops.Conv, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """ONNX Conv of ``x`` (N, C, H, W) with the given weight/bias tensors (op's geometry).

    On CUDA, cuDNN is disabled so that no FFT/Winograd algorithm breaks the dot-product
    error bound of :mod:`domains.rounding`.
    """
    x, padding = conv_padding(x, op.pads)
    with torch.backends.cudnn.flags(enabled=False):
        return F.conv2d(
            x,
            weight,
            bias,
            stride=op.strides,
            padding=padding,
            dilation=op.dilations,
            groups=op.group,
        )


def conv_terms(op: ops.Conv) -> int:
    """Number of terms of each output's dot product (bias included)."""
    return int(math.prod(op.weight.shape[1:])) + 1


def pool_terms(op: ops.AveragePool | ops.MaxPool) -> int:
    """Number of elements in a pooling window."""
    return int(op.kernel[0] * op.kernel[1])


def reduced_terms(op: ops.ReduceSum, shape: tuple[int, ...]) -> int:
    """Number of terms summed per output of a reduction over IR ``shape``."""
    return int(math.prod(shape[a] for a in op.axes)) if op.axes else 1


def _affine(c, r, center_fn, abs_fn, abs_bias, n_terms: int) -> Interval:
    """Bounds of an affine map on the box ``[c - r, c + r]`` (center/radius form).

    Soundness: ``W x + b`` over the box lies in ``[W c + b - |W| r, W c + b + |W| r]``;
    the computed ``W c + b`` and ``|W| r`` each err by at most ``gamma_{n}`` times the
    matching part of ``|W| (|c| + r) + |b|`` (:func:`~domains.rounding.dot_error`), so one
    error term on that sum covers both; the final additions are rounded outward.
    """
    yc = center_fn(c)
    yr = abs_fn(r)
    mag = abs_fn(up(c.abs() + r))
    if abs_bias is not None:
        mag = mag + abs_bias
    rad = up(yr + dot_error(mag, n_terms + 2))
    return Interval(down(yc - rad), up(yc + rad))


def _gemm(op: ops.Gemm, x: Interval) -> Interval:
    """Gemm in center/radius form (see :func:`_affine`).

    Soundness: interval arithmetic for a linear map is exact in center/radius form
    (Moore, *Interval Analysis*, 1966), plus the dot-product rounding bound.
    """
    like = x.lower
    W, Wa = constant(op.weight, like), abs_constant(op.weight, like)
    b, ba = constant(op.bias, like), abs_constant(op.bias, like)
    c, r = center_radius(x.lower, x.upper)
    return _affine(c, r, lambda t: t @ W.T + b, lambda t: t @ Wa.T, ba, op.weight.shape[1] + 1)


def _conv(op: ops.Conv, x: Interval) -> Interval:
    """Conv in center/radius form: ``W * c + b`` and ``|W| * r``.

    Soundness: as :func:`_gemm`; each output is a dot product of ``C/group * kH * kW``
    terms plus the bias (zero padding is exact).
    """
    like = x.lower
    W, Wa = constant(op.weight, like), abs_constant(op.weight, like)
    b, ba = constant(op.bias, like), abs_constant(op.bias, like)
    c, r = center_radius(x.lower, x.upper)
    return _affine(
        c,
        r,
        lambda t: conv2d(op, t, W, b),
        lambda t: conv2d(op, t, Wa, None),
        ba.reshape(-1, 1, 1),
        conv_terms(op),
    )


def _add_const(op: ops.AddConst, x: Interval) -> Interval:
    """Soundness: ``x + v`` is increasing in x; each sum is correctly rounded, rounded out."""
    v = constant(op.value, x.lower)
    return Interval(down(x.lower + v), up(x.upper + v))


def _mul_const(op: ops.MulConst, x: Interval) -> Interval:
    """Soundness: ``x v`` is monotone in x (direction by the sign of v): extremes at ends."""
    v = constant(op.value, x.lower)
    a, b = x.lower * v, x.upper * v
    return Interval(down(torch.minimum(a, b)), up(torch.maximum(a, b)))


def _div_const(op: ops.DivConst, x: Interval) -> Interval:
    """Soundness: ``x / v`` (v != 0) is monotone in x; correctly rounded, rounded out."""
    v = constant(op.value, x.lower)
    a, b = x.lower / v, x.upper / v
    return Interval(down(torch.minimum(a, b)), up(torch.maximum(a, b)))


def _neg(op: ops.Neg, x: Interval) -> Interval:
    """Soundness: ``-[l, u] = [-u, -l]`` exactly."""
    return Interval(-x.upper, -x.lower)


def _add(op: ops.Add, a: Interval, b: Interval) -> Interval:
    """Soundness: ``[la + lb, ua + ub]``, each sum rounded outward."""
    return Interval(down(a.lower + b.lower), up(a.upper + b.upper))


def _sub(op: ops.Sub, a: Interval, b: Interval) -> Interval:
    """Soundness: ``[la - ub, ua - lb]``, each difference rounded outward."""
    return Interval(down(a.lower - b.upper), up(a.upper - b.lower))


def _mul(op: ops.Mul, a: Interval, b: Interval) -> Interval:
    """Soundness: bilinear, extremes at the four corners (Moore 1966), rounded outward."""
    return Interval(*mul_bounds(a.lower, a.upper, b.lower, b.upper))


def _div(op: ops.Div, a: Interval, b: Interval) -> Interval:
    """Interval division.

    Soundness: when ``0`` is outside ``[lb, ub]``, ``a / b`` is monotone in each argument
    on the box, so its extremes are at the corners (rounded outward). When the divisor
    interval holds 0 the output is unbounded: ``[-inf, inf]``, or NaN when the dividend
    interval holds 0 too (``0 / 0`` is NaN concretely).
    """
    q = (a.lower / b.lower, a.lower / b.upper, a.upper / b.lower, a.upper / b.upper)
    lo = down(torch.minimum(torch.minimum(q[0], q[1]), torch.minimum(q[2], q[3])))
    hi = up(torch.maximum(torch.maximum(q[0], q[1]), torch.maximum(q[2], q[3])))
    zero_div = (b.lower <= 0) & (b.upper >= 0)
    nan_possible = zero_div & (a.lower <= 0) & (a.upper >= 0)
    inf = torch.full_like(lo, math.inf)
    nan = torch.full_like(lo, math.nan)
    lo = torch.where(zero_div, torch.where(nan_possible, nan, -inf), lo)
    hi = torch.where(zero_div, torch.where(nan_possible, nan, inf), hi)
    return Interval(lo, hi)


def _constant(op: ops.ConstantOf) -> Interval:
    """Soundness: a constant is its own exact interval."""
    return Interval.exact(constant(op.value).unsqueeze(0))


def _relu(op: ops.Relu, x: Interval) -> Interval:
    """Soundness: relu is monotone and exact in floating point."""
    return x.map(torch.relu)


def _leaky_relu(op: ops.LeakyRelu, x: Interval) -> Interval:
    """Soundness: piecewise linear with its kink at 0, so its extremes over ``[l, u]`` are
    at ``l``, ``u`` or ``clamp(0, l, u)`` (any sign of alpha); ``alpha x`` rounded out."""
    zero = torch.minimum(torch.maximum(torch.zeros_like(x.lower), x.lower), x.upper)
    lows, highs = [], []
    for t in (x.lower, x.upper, zero):
        scaled = op.alpha * t
        lows.append(torch.where(t >= 0, t, down(scaled)))
        highs.append(torch.where(t >= 0, t, up(scaled)))
    lo = torch.minimum(torch.minimum(lows[0], lows[1]), lows[2])
    hi = torch.maximum(torch.maximum(highs[0], highs[1]), highs[2])
    return Interval(lo, hi)


def _monotone_libm(fn, lo_clip: float, hi_clip: float):
    def rule(op: ops.Op, x: Interval) -> Interval:
        lo = torch.clamp(widen_libm_down(fn(x.lower)), min=lo_clip, max=hi_clip)
        hi = torch.clamp(widen_libm_up(fn(x.upper)), min=lo_clip, max=hi_clip)
        return Interval(lo, hi)

    rule.__doc__ = (
        f"Soundness: {fn.__name__} is nondecreasing with range in [{lo_clip}, {hi_clip}]; "
        "its values at the ends are widened by the libm accuracy assumption "
        "(domains.rounding)."
    )
    return rule


_sigmoid = _monotone_libm(torch.sigmoid, 0.0, 1.0)
_tanh = _monotone_libm(torch.tanh, -1.0, 1.0)
_exp = _monotone_libm(torch.exp, 0.0, math.inf)
_log = _monotone_libm(torch.log, -math.inf, math.inf)


def _sqrt(op: ops.Sqrt, x: Interval) -> Interval:
    """Soundness: sqrt is nondecreasing and correctly rounded (IEEE 754): the next float
    outward bounds it; a negative lower end gives NaN (concretely NaN there)."""
    lo = torch.clamp(down(torch.sqrt(x.lower)), min=0.0)
    return Interval(lo, up(torch.sqrt(x.upper)))


def _abs(op: ops.Abs, x: Interval) -> Interval:
    """Soundness: ``|x|`` over ``[l, u]`` is ``[l, u]``, ``[-u, -l]`` or ``[0, max(-l, u)]``
    by the sign of the interval; exact."""
    lb, ub = x.lower, x.upper
    lo = torch.where(lb >= 0, lb, torch.where(ub <= 0, -ub, torch.zeros_like(lb)))
    return Interval(lo, torch.maximum(-lb, ub))


def _clip(op: ops.Clip, x: Interval) -> Interval:
    """Soundness: clip is monotone and exact."""
    return x.map(lambda t: torch.clamp(t, min=op.min, max=op.max))


def _softmax(op: ops.Softmax, x: Interval) -> Interval:
    """Soundness: see :func:`domains.relaxations.softmax_interval` (lemma
    ``softmax_interval``)."""
    return Interval(*softmax_interval(x.lower, x.upper, op.axis + 1))


def _exact_monotone(op: ops.Op, *xs: Interval) -> Interval:
    """Structural ops (and MaxPool): exact and nondecreasing in every input.

    Soundness: reshaping, permuting, slicing, gathering, padding with a constant,
    concatenating and taking maxima only move or compare values (no rounding), and are
    nondecreasing in each input, so applying them to both bounds is exact.
    """
    rule = CONCRETE.rules[type(op)]
    return Interval(rule(op, *(x.lower for x in xs)), rule(op, *(x.upper for x in xs)))


def _positive_linear(n_terms_of):
    def rule(op: ops.Op, x: Interval) -> Interval:
        concrete = CONCRETE.rules[type(op)]
        mag = concrete(op, torch.maximum(x.lower.abs(), x.upper.abs()))
        err = dot_error(mag, n_terms_of(op, x) + 4)
        return Interval(down(concrete(op, x.lower) - err), up(concrete(op, x.upper) + err))

    rule.__doc__ = (
        "Soundness: a linear map with non-negative weights is nondecreasing, so the images "
        "of the bounds bound the image; the rounding of the sum and of the division by the "
        "count errs by at most gamma_{n+3} times the same map applied to |x| "
        "(domains.rounding.dot_error)."
    )
    return rule


_average_pool = _positive_linear(lambda op, x: 2 * pool_terms(op))
_reduce = _positive_linear(lambda op, x: reduced_terms(op, x.shape))


TRANSFER = Table(
    "interval domain",
    {
        ops.Gemm: _gemm,
        ops.Conv: _conv,
        ops.AddConst: _add_const,
        ops.MulConst: _mul_const,
        ops.DivConst: _div_const,
        ops.Neg: _neg,
        ops.Add: _add,
        ops.Sub: _sub,
        ops.Mul: _mul,
        ops.Div: _div,
        ops.ConstantOf: _constant,
        ops.Relu: _relu,
        ops.LeakyRelu: _leaky_relu,
        ops.Sigmoid: _sigmoid,
        ops.Tanh: _tanh,
        ops.Exp: _exp,
        ops.Log: _log,
        ops.Sqrt: _sqrt,
        ops.Abs: _abs,
        ops.Clip: _clip,
        ops.Softmax: _softmax,
        ops.MaxPool: _exact_monotone,
        ops.AveragePool: _average_pool,
        ops.ReduceSum: _reduce,
        ops.ReduceMean: _reduce,
        ops.Reshape: _exact_monotone,
        ops.Transpose: _exact_monotone,
        ops.Concat: _exact_monotone,
        ops.Slice: _exact_monotone,
        ops.Gather: _exact_monotone,
        ops.Pad: _exact_monotone,
    },
)
