"""Forward interval pass of the linear domain: rigorous boxes for every value.

The back-substitution engine needs, for every value ``v``, a box ``[l_v, u_v]`` valid over
the region (to relax nonlinear ops, and to bound the rounding error of each backward
step through magnitudes ``max(|l_v|, |u_v|)``). This module computes them by interval
arithmetic, one rule per op class (``FORWARD``), and the *absolute* linear maps
``|L| m + |b|`` of the linear ops (``ABS``) that the error bounds use. The engine
replaces the boxes of nonlinear ops' inputs with tighter back-substitution bounds as it
goes, so the boxes of later values are computed from tightened ones.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F

from domains.linear import relax
from domains.linear.floats import down, inflate, up
from prover.ir import ops
from prover.semantics import CONCRETE
from prover.tensors import constant

Box = tuple[torch.Tensor, torch.Tensor]

_ABS_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def abs_constant(op: ops.Op, attribute: str, like: torch.Tensor) -> torch.Tensor:
    """``|op.<attribute>|`` as a tensor like ``like``, cached per op (weights are frozen)."""
    cache = _ABS_WEIGHTS.setdefault(op, {})
    key = (attribute, like.dtype, str(like.device))
    if key not in cache:
        cache[key] = constant(getattr(op, attribute), like).abs()
    return cache[key]


# ------------------------------------------------------------ |L| m + |b| of linear ops


def _abs_gemm(op: ops.Gemm, m: torch.Tensor, offset: bool) -> torch.Tensor:
    out = m @ abs_constant(op, "weight", m).T
    return out + abs_constant(op, "bias", m) if offset else out


def _abs_conv(op: ops.Conv, m: torch.Tensor, offset: bool) -> torch.Tensor:
    top, left, bottom, right = op.pads
    m = F.pad(m, (left, right, top, bottom))
    bias = abs_constant(op, "bias", m) if offset else None
    return F.conv2d(
        m,
        abs_constant(op, "weight", m),
        bias,
        stride=op.strides,
        dilation=op.dilations,
        groups=op.group,
    )


def _abs_addconst(op, m, offset):
    return m + abs_constant(op, "value", m) if offset else m


def _abs_pad(op: ops.Pad, m, offset):
    return CONCRETE.rules[ops.Pad](ops.Pad(op.pads, abs(op.value) if offset else 0.0), m)


def _abs_constant_of(op: ops.ConstantOf, offset):
    value = constant(op.value).unsqueeze(0)
    return value.abs() if offset else torch.zeros_like(value)


def _abs_same(op, *ms, offset):
    """Ops whose matrix is non-negative (pooling, sums, copies): ``|L| m = L m``."""
    return CONCRETE.rules[type(op)](op, *ms)


#: ``fn(op, *magnitudes, offset) -> |L| m (+ |b|)`` for every linear op
ABS: dict[type[ops.Op], Callable[..., torch.Tensor]] = {
    ops.Gemm: _abs_gemm,
    ops.Conv: _abs_conv,
    ops.AddConst: _abs_addconst,
    ops.MulConst: lambda op, m, offset: m * abs_constant(op, "value", m),
    ops.DivConst: lambda op, m, offset: m / abs_constant(op, "value", m),
    ops.Neg: lambda op, m, offset: m,
    ops.Add: lambda op, a, b, offset: a + b,
    ops.Sub: lambda op, a, b, offset: a + b,
    ops.ConstantOf: _abs_constant_of,
    ops.Pad: _abs_pad,
    **{
        cls: _abs_same
        for cls in (
            ops.AveragePool,
            ops.ReduceSum,
            ops.ReduceMean,
            ops.Reshape,
            ops.Transpose,
            ops.Concat,
            ops.Slice,
            ops.Gather,
        )
    },
}


def abs_apply(op: ops.Op, *mags: torch.Tensor, offset: bool = True) -> torch.Tensor:
    """``|L| m + |b|`` (or ``|L| m`` without ``offset``) for a linear op (see ``ABS``)."""
    return ABS[type(op)](op, *mags, offset=offset)


#: linear ops that only move or copy entries (exact and monotone in each input)
STRUCTURAL = (ops.Reshape, ops.Transpose, ops.Concat, ops.Slice, ops.Gather)


def _affine(op: ops.Op, gamma: float, *boxes: Box) -> Box:
    """Interval image of a linear (affine) op by centre and radius.

    Soundness: with ``c = fl(l/2 + u/2)`` (any float) and ``r >= max(u - c, c - l)``
    (rounded up), every ``x`` in the box is ``c + d`` with ``|d| <= r``, and
    ``f(x) = f(c) + L d``. The computed ``fl(f(c))`` is within
    ``gamma_N (|L| |c| + |b|)`` of ``f(c)`` (each output is a sum of at most N products,
    Higham 3.4; single roundings for elementwise ops), and ``|L d| <= |L| r``. The
    widening ``inflate(|L| r + gamma_N (|L||c| + |b|))`` bounds both, and the final
    ``down``/``up`` cover the last addition.
    """
    if isinstance(op, ops.ConstantOf):
        value = constant(op.value).unsqueeze(0)
        return value, value
    if isinstance(op, STRUCTURAL):
        rule = CONCRETE.rules[type(op)]
        return rule(op, *(b[0] for b in boxes)), rule(op, *(b[1] for b in boxes))
    if isinstance(op, ops.Neg):
        ((lb, ub),) = boxes
        return -ub, -lb
    centres, radii = [], []
    for lb, ub in boxes:
        c = lb / 2 + ub / 2
        centres.append(c)
        radii.append(up(torch.maximum(ub - c, c - lb)))
    yc = CONCRETE.rules[type(op)](op, *centres)
    spread = abs_apply(op, *radii, offset=False)
    err = abs_apply(op, *(c.abs() for c in centres)) * gamma
    slack = inflate(spread + err, gamma)
    return down(yc - slack), up(yc + slack)


def _relu(op, gamma, box):
    lb, ub = box
    return lb.clamp(min=0), ub.clamp(min=0)


def _leaky(op: ops.LeakyRelu, gamma, box):
    lb, ub = box
    a = op.alpha
    fl_lo, fl_hi = down(a * lb), up(a * lb)
    fu_lo, fu_hi = down(a * ub), up(a * ub)
    f_l = (torch.where(lb >= 0, lb, fl_lo), torch.where(lb >= 0, lb, fl_hi))
    f_u = (torch.where(ub >= 0, ub, fu_lo), torch.where(ub >= 0, ub, fu_hi))
    lo = torch.minimum(f_l[0], f_u[0])
    hi = torch.maximum(f_l[1], f_u[1])
    spans_zero = (lb <= 0) & (ub >= 0)
    lo = torch.where(spans_zero, lo.clamp(max=0), lo)
    hi = torch.where(spans_zero, hi.clamp(min=0), hi)
    return lo, hi


def _monotone(bounds_fn):
    def rule(op, gamma, box):
        lb, ub = box
        return bounds_fn(lb)[0], bounds_fn(ub)[1]

    return rule


def _maxpool(op: ops.MaxPool, gamma, box):
    rule = CONCRETE.rules[ops.MaxPool]
    return rule(op, box[0]), rule(op, box[1])


def _linear_rule(op, gamma, *boxes):
    return _affine(op, gamma, *boxes)


#: interval rules: rule(op, gamma, *input_boxes) -> output box
FORWARD: dict[type[ops.Op], Callable[..., Box]] = {
    **{cls: _linear_rule for cls in ABS},
    ops.Relu: _relu,
    ops.LeakyRelu: _leaky,
    ops.Sigmoid: _monotone(relax.sigmoid_value_bounds),
    ops.Tanh: _monotone(relax.tanh_value_bounds),
    ops.MaxPool: _maxpool,
}
