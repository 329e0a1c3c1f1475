"""Backward (back-substitution) rules of the linear domain, one per op class.

A rule maps the linear coefficients ``lam`` of a node's output value (shape
``(b, m, *output_shape)``, ``b`` = batch size or 1 when the coefficients are shared by
every box) to coefficients on each of its inputs, a constant ``(b, m)`` and an error bound
``(b, m)``, such that over the reals and for every input in the region

    ``lam . y  >=  sum_k lam_k . x_k  +  const  -  err``

where ``x_k`` are the node's inputs and ``y = op(x_1, ...)``. Signature:

    ``rule(op, lam, ctx, node) -> (list of lam_k, const or None, err or None)``

``ctx`` is the running :class:`~domains.linear.engine.Analysis`: ``ctx.gamma`` (the
graph's ``gamma_N``), ``ctx.shape(name)``, ``ctx.box(name)``, ``ctx.mag(name)`` (bound
of ``|value|``), ``ctx.amag(name)`` (``|L| mag(input) + |b|`` of a linear node) and
``ctx.relaxation(node)`` (the elementwise relaxation of a nonlinear node).

Soundness (all linear rules, via :func:`_linear`): the exact identity is
``lam . y = (lam L) . x + lam . b``. The computed ``lam_k`` and ``const`` are sums of at
most ``N`` products of ``lam`` entries with entries of ``L`` or ``b``; by Higham (3.4)
each computed entry is within ``gamma_N`` times the sum of the absolute products, so the
substitution error ``|(fl(lam L) - lam L) . x| + |fl(lam . b) - lam . b|`` is at most
``gamma_N |lam| . (|L| |x| + |b|) <= gamma_N |lam| . amag``. That is the ``err`` returned.
Ops that only move entries (reshape, transpose, slice, gather, concat) are exact, and the
bound is then merely a small over-approximation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from domains.linear.floats import rowdot
from prover.errors import UnsupportedOperation
from prover.ir import ops
from prover.ir.interpreter import Table
from prover.semantics import CONCRETE
from prover.tensors import constant


def _linear(rule):
    """Wrap a rule ``(op, lam, ctx, node) -> (ins, const)`` with the linear error bound."""

    def wrapped(op, lam, ctx, node):
        ins, const = rule(op, lam, ctx, node)
        err = ctx.gamma * rowdot(lam.abs(), ctx.amag(node.name))
        return ins, const, err

    wrapped.__doc__ = rule.__doc__
    wrapped.__name__ = rule.__name__
    return wrapped


def _full(value, shape, like):
    """A constant broadcast to ``(1, *shape)``."""
    return constant(value, like).expand(shape).unsqueeze(0)


def _in_shape(ctx, node, k=0):
    return tuple(ctx.shape(node.inputs[k]))


# ------------------------------------------------------------------------ linear maps


@_linear
def gemm(op: ops.Gemm, lam, ctx, node):
    """``y = x W^T + b``: ``lam_x = lam W``, ``const = lam . b`` (broadcast over leading axes).

    Soundness: the linear-rule bound in the module docstring (inner dimension ``n_out``).
    """
    weight = constant(op.weight, lam)
    # One 2-D matmul: torch's broadcasting 3-D @ 2-D path can be far slower on CPU.
    lam_x = (lam.reshape(-1, weight.shape[0]) @ weight).reshape(*lam.shape[:-1], weight.shape[1])
    if lam.dim() == 3:
        const = (lam.reshape(-1, weight.shape[0]) @ constant(op.bias, lam)).reshape(lam.shape[:2])
    else:
        const = rowdot(lam, _full(op.bias, lam.shape[2:], lam))
    return [lam_x], const


def _transpose_window(lam, weight, strides, dilations, group, pads, in_shape):
    """Adjoint of a padded, strided 2-D window map (conv or pooling) on ``lam``."""
    b, m = lam.shape[:2]
    flat = lam.reshape(b * m, *lam.shape[2:])
    back = F.conv_transpose2d(flat, weight, stride=strides, dilation=dilations, groups=group)
    top, left, bottom, right = pads
    hp, wp = in_shape[1] + top + bottom, in_shape[2] + left + right
    back = F.pad(back, (0, max(0, wp - back.shape[3]), 0, max(0, hp - back.shape[2])))
    back = back[:, :, top : top + in_shape[1], left : left + in_shape[2]]
    return back.reshape(b, m, *in_shape)


@_linear
def conv(op: ops.Conv, lam, ctx, node):
    """2-D convolution: ``lam_x = conv_transpose2d(lam, W)`` cropped to the unpadded input.

    Padded positions are constant zeros, so their coefficients are dropped; rows and
    columns of the padded input that no window reaches get coefficient 0.

    Soundness: the transposed convolution sums, for each input position, the products of
    ``lam`` with the weights of every window covering it: a sum of at most
    ``numel(output)`` products, so the linear-rule bound applies.
    """
    lam_x = _transpose_window(
        lam,
        constant(op.weight, lam),
        op.strides,
        op.dilations,
        op.group,
        op.pads,
        _in_shape(ctx, node),
    )
    const = lam.sum(dim=(-2, -1)) @ constant(op.bias, lam)
    return [lam_x], const


def _vjp(op, lam, in_shape):
    """Adjoint of a linear op without offset, by autograd of its concrete semantics."""
    b, m = lam.shape[:2]
    with torch.enable_grad():
        x = torch.zeros((b * m, *in_shape), dtype=lam.dtype, device=lam.device)
        x.requires_grad_(True)
        y = CONCRETE.rules[type(op)](op, x)
        (grad,) = torch.autograd.grad(
            y, x, lam.reshape(b * m, *y.shape[1:]), create_graph=lam.requires_grad
        )
    return grad.reshape(b, m, *in_shape)


@_linear
def average_pool(op: ops.AveragePool, lam, ctx, node):
    """Average pooling: the adjoint of the (linear) concrete rule, by autograd.

    Soundness: the adjoint sums, per input position, ``lam`` times ``1/count`` over the
    windows containing it (at most ``numel(output)`` products): linear-rule bound.
    """
    return [_vjp(op, lam, _in_shape(ctx, node))], None


@_linear
def slice_(op: ops.Slice, lam, ctx, node):
    """Slice: scatter ``lam`` back to the selected positions (others get 0).

    Soundness: exact (entries are only moved); the linear-rule bound is added anyway.
    """
    return [_vjp(op, lam, _in_shape(ctx, node))], None


@_linear
def gather(op: ops.Gather, lam, ctx, node):
    """Gather: add ``lam`` of every output to the input it copies (repeats add up).

    Soundness: repeated indices add coefficients (sums of copies): linear-rule bound.
    """
    return [_vjp(op, lam, _in_shape(ctx, node))], None


@_linear
def add_const(op: ops.AddConst, lam, ctx, node):
    """``y = x + v``: ``lam_x = lam``, ``const = lam . v``.

    Soundness: the constant is a sum of products: linear-rule bound.
    """
    return [lam], rowdot(lam, _full(op.value, lam.shape[2:], lam))


@_linear
def mul_const(op: ops.MulConst, lam, ctx, node):
    """``y = x * v``: ``lam_x = lam * v``.

    Soundness: one rounding per entry, within the linear-rule bound.
    """
    return [lam * constant(op.value, lam)], None


@_linear
def div_const(op: ops.DivConst, lam, ctx, node):
    """``y = x / v``: ``lam_x = lam / v``.

    Soundness: one rounding per entry, within the linear-rule bound.
    """
    return [lam / constant(op.value, lam)], None


@_linear
def neg(op: ops.Neg, lam, ctx, node):
    """``y = -x``: ``lam_x = -lam``.

    Soundness: exact (negation does not round).
    """
    return [-lam], None


def _unbroadcast(lam, shape):
    """Sum ``lam`` (b, m, *out) over the axes along which ``shape`` was broadcast."""
    out = lam.shape[2:]
    extra = len(out) - len(shape)
    if extra:
        lam = lam.sum(dim=tuple(range(2, 2 + extra)))
    axes = tuple(2 + i for i, d in enumerate(shape) if d == 1 and lam.shape[2 + i] != 1)
    if axes:
        lam = lam.sum(dim=axes, keepdim=True)
    return lam


@_linear
def add(op: ops.Add, lam, ctx, node):
    """``y = a + b`` (broadcasting): each input gets ``lam`` summed over broadcast axes.

    Soundness: linear-rule bound (``amag`` is ``mag(a) + mag(b)`` broadcast).
    """
    return [
        _unbroadcast(lam, _in_shape(ctx, node, 0)),
        _unbroadcast(lam, _in_shape(ctx, node, 1)),
    ], None


@_linear
def sub(op: ops.Sub, lam, ctx, node):
    """``y = a - b``: ``lam_a = lam``, ``lam_b = -lam`` (summed over broadcast axes).

    Soundness: linear-rule bound (``amag`` is ``mag(a) + mag(b)`` broadcast).
    """
    return [
        _unbroadcast(lam, _in_shape(ctx, node, 0)),
        -_unbroadcast(lam, _in_shape(ctx, node, 1)),
    ], None


@_linear
def constant_of(op: ops.ConstantOf, lam, ctx, node):
    """A constant: ``const = lam . value``, no input.

    Soundness: one sum of products: linear-rule bound.
    """
    return [], rowdot(lam, constant(op.value, lam).unsqueeze(0))


@_linear
def reshape(op: ops.Reshape, lam, ctx, node):
    """Reshape (C order): reshape the coefficients back.

    Soundness: exact (entries are only moved).
    """
    return [lam.reshape(*lam.shape[:2], *_in_shape(ctx, node))], None


@_linear
def transpose(op: ops.Transpose, lam, ctx, node):
    """Transpose: apply the inverse permutation to the coefficients.

    Soundness: exact (entries are only moved).
    """
    inverse = [0] * len(op.perm)
    for i, p in enumerate(op.perm):
        inverse[p] = i
    return [lam.permute(0, 1, *(i + 2 for i in inverse))], None


@_linear
def concat(op: ops.Concat, lam, ctx, node):
    """Concat: split the coefficients along the axis.

    Soundness: exact (entries are only moved).
    """
    sizes = [ctx.shape(name)[op.axis] for name in node.inputs]
    return list(torch.split(lam, sizes, dim=op.axis + 2)), None


@_linear
def pad(op: ops.Pad, lam, ctx, node):
    """Constant padding: crop the coefficients; padded positions add ``value * lam``.

    Soundness: linear-rule bound (``amag`` is the padded ``mag`` with ``|value|``).
    """
    in_shape = _in_shape(ctx, node)
    rank = len(in_shape)
    lam_x = lam
    for axis in range(rank):
        lam_x = lam_x.narrow(axis + 2, op.pads[axis], in_shape[axis])
    const = None
    if op.value != 0.0:
        mask = torch.zeros((1, *in_shape), dtype=lam.dtype, device=lam.device)
        mask = CONCRETE.rules[ops.Pad](op, mask)
        const = rowdot(lam, mask)
    return [lam_x], const


@_linear
def reduce_sum(op: ops.ReduceSum, lam, ctx, node):
    """Sum over axes: every summed input gets the coefficient of its sum.

    Soundness: the coefficients are exact copies; ``amag`` bounds the sums.
    """
    return [_expand_reduced(op, lam, _in_shape(ctx, node))], None


@_linear
def reduce_mean(op: ops.ReduceMean, lam, ctx, node):
    """Mean over axes: ``lam / k`` for each of the ``k`` inputs.

    Soundness: one rounding per entry, within the linear-rule bound.
    """
    in_shape = _in_shape(ctx, node)
    count = math.prod(in_shape[a] for a in op.axes)
    return [_expand_reduced(op, lam, in_shape) / count], None


def _expand_reduced(op, lam, in_shape):
    if not op.keepdims:
        for axis in sorted(op.axes):
            lam = lam.unsqueeze(axis + 2)
    return lam.expand(*lam.shape[:2], *in_shape)


# ------------------------------------------------------------------------ nonlinear


def elementwise(op, lam, ctx, node):
    """An elementwise nonlinear op with relaxation ``sl x + tl <= f(x) <= su x + tu``.

    ``lam . f(x) >= (lam+ sl + lam- su) . x + lam+ . tl + lam- . tu`` (pick the lower
    line where the coefficient is positive, the upper one where it is negative; a zero
    coefficient contributes nothing either way).

    Soundness: the relaxation holds over the reals on the input's box (see
    ``domains.linear.relax``). Each computed coefficient is one product (the other term is
    exactly 0), off by at most ``u |lam| s_max``; times ``|x| <= mag`` this sums to at most
    ``u |lam| . (s_max mag)``. The constant is two sums of ``numel`` products and one
    addition: within ``gamma_N |lam| . t_max``. So
    ``err = gamma_N |lam| . (s_max mag + t_max)`` with ``s_max = max(|sl|, |su|)``,
    ``t_max = max(|tl|, |tu|)``.
    """
    rel = ctx.relaxation(node)
    negative, positive = lam.clamp(max=0), lam.clamp(min=0)
    # One of the two products is exactly 0, so each coefficient is one rounded product
    # (addcmul, fused or not, adds an exact 0). Three times faster on CPUs than
    # multiplying by a torch.where of the broadcast slopes.
    lam_x = torch.addcmul(negative * rel.su.unsqueeze(1), positive, rel.sl.unsqueeze(1))
    const = rowdot(negative, rel.tu)
    if bool(rel.tl.any()):  # ReLU: the lower line has no intercept
        const = const + rowdot(positive, rel.tl)
    s_max = torch.maximum(rel.sl.abs(), rel.su.abs())
    t_max = torch.maximum(rel.tl.abs(), rel.tu.abs())
    err = ctx.gamma * rowdot(lam.abs(), s_max * ctx.mag(node.inputs[0]) + t_max)
    return [lam_x], const, err


def maxpool_relaxation(op: ops.MaxPool, lb: torch.Tensor, ub: torch.Tensor, in_shape):
    """DeepPoly's MaxPool relaxation: per window, the input ``j*`` with the largest lower
    bound; ``y >= x_j*`` always, ``y <= x_j*`` when ``l_j* >= u_i`` for every other ``i``
    in the window (it dominates), otherwise ``y <= max_i u_i``.

    Returns ``(pos, dominated, upper)``: flat index of ``j*`` in the *padded* input
    ``(B, C, L)``, a 0/1 float ``(B, C, L)`` and the constant upper bound ``(B, C, L)``.
    """
    channels = in_shape[0]
    batch = lb.shape[0]
    pool = CONCRETE.rules[ops.MaxPool]
    out_shape = op.infer_shape(in_shape)
    padded_l = _pool_padded(op, lb, float("-inf"), in_shape, out_shape)
    padded_u = _pool_padded(op, ub, float("-inf"), in_shape, out_shape)
    hp, wp = padded_l.shape[2:]
    unfold = dict(kernel_size=op.kernel, dilation=op.dilations, stride=op.strides)
    wl = F.unfold(padded_l.reshape(batch * channels, 1, hp, wp), **unfold)
    wu = F.unfold(padded_u.reshape(batch * channels, 1, hp, wp), **unfold)
    index = torch.arange(hp * wp, dtype=lb.dtype, device=lb.device).reshape(1, 1, hp, wp)
    windex = F.unfold(index, **unfold)[0].long()  # (k, L)
    best = wl.argmax(dim=1, keepdim=True)  # (B*C, 1, L)
    others = wu.scatter(1, best, float("-inf")).amax(dim=1)
    dominated = (wl.gather(1, best).squeeze(1) >= others).to(lb.dtype)
    columns = torch.arange(windex.shape[1], device=lb.device)
    pos = windex[best.squeeze(1), columns]  # (B*C, L): flat padded index of j*
    upper = pool(op, ub).reshape(batch * channels, -1)
    shape = (batch, channels, -1)
    return pos.reshape(shape), dominated.reshape(shape), upper.reshape(shape), (hp, wp)


def _pool_padded(op, x, value, in_shape, out_shape):
    top, left, bottom, right = op.pads
    need_h = (out_shape[1] - 1) * op.strides[0] + op.dilations[0] * (op.kernel[0] - 1) + 1
    need_w = (out_shape[2] - 1) * op.strides[1] + op.dilations[1] * (op.kernel[1] - 1) + 1
    extra_b = max(0, need_h - (in_shape[1] + top + bottom))
    extra_r = max(0, need_w - (in_shape[2] + left + right))
    return F.pad(x, (left, right + extra_r, top, bottom + extra_b), value=value)


def maxpool(op: ops.MaxPool, lam, ctx, node):
    """MaxPool by :func:`maxpool_relaxation`: the lower line (and the upper one where a
    single input dominates) is the input ``x_j*``; otherwise the constant ``max u``.

    Soundness: ``max_i x_i >= x_j*`` always; if ``l_j* >= u_i`` for all other ``i`` then
    ``max_i x_i = x_j*`` on the box; and ``max_i x_i <= max_i u_i``. Padding never wins
    (its lower bound is -inf, and it is never ``j*`` since every window holds an input).
    The coefficients of ``x_j*`` are scattered with additions (an input in several windows
    gets a sum of at most ``numel(output)`` terms), the constant is one ``rowdot``:
    ``err = gamma_N |lam| . (maxpool(mag) + |max u|)``.
    """
    in_shape = _in_shape(ctx, node)
    lb, ub = ctx.box(node.inputs[0])
    pos, dominated, upper, (hp, wp) = maxpool_relaxation(op, lb, ub, in_shape)
    b, m = lam.shape[:2]
    batch = max(b, pos.shape[0])
    channels = in_shape[0]
    flat = lam.reshape(b, m, channels, -1)
    pos_lam = flat.clamp(min=0)
    neg_lam = flat.clamp(max=0)
    coef = pos_lam + neg_lam * dominated.unsqueeze(1)
    const = rowdot(neg_lam * (1 - dominated.unsqueeze(1)), upper)
    coef = coef.expand(batch, m, channels, coef.shape[-1])
    index = pos.unsqueeze(1).expand(batch, m, channels, pos.shape[-1])
    lam_x = torch.zeros((batch, m, channels, hp * wp), dtype=lam.dtype, device=lam.device)
    lam_x = lam_x.scatter_add(3, index, coef).reshape(batch, m, channels, hp, wp)
    top, left = op.pads[0], op.pads[1]
    lam_x = lam_x[..., top : top + in_shape[1], left : left + in_shape[2]]
    mag = CONCRETE.rules[ops.MaxPool](op, ctx.mag(node.inputs[0]))
    err = ctx.gamma * rowdot(lam.abs(), mag + upper.reshape(mag.shape).abs())
    return [lam_x], const, err


RULES = {
    ops.Gemm: gemm,
    ops.Conv: conv,
    ops.AddConst: add_const,
    ops.MulConst: mul_const,
    ops.DivConst: div_const,
    ops.Neg: neg,
    ops.Add: add,
    ops.Sub: sub,
    ops.ConstantOf: constant_of,
    ops.Relu: elementwise,
    ops.LeakyRelu: elementwise,
    ops.Sigmoid: elementwise,
    ops.Tanh: elementwise,
    ops.MaxPool: maxpool,
    ops.AveragePool: average_pool,
    ops.ReduceSum: reduce_sum,
    ops.ReduceMean: reduce_mean,
    ops.Reshape: reshape,
    ops.Transpose: transpose,
    ops.Concat: concat,
    ops.Slice: slice_,
    ops.Gather: gather,
    ops.Pad: pad,
}

#: the backward rules, keyed by op class
TRANSFER = Table("linear domain", RULES)

#: ops relaxed elementwise (their input needs bounds); MaxPool needs its input's bounds too
ELEMENTWISE = (ops.Relu, ops.LeakyRelu, ops.Sigmoid, ops.Tanh)
NEEDS_BOUNDS = (*ELEMENTWISE, ops.MaxPool)


def check_supported(graph) -> None:
    """Raise UnsupportedOperation (naming the node) for an op the domain cannot bound."""
    for node in graph.nodes:
        if type(node.op) not in RULES:
            raise UnsupportedOperation(
                node.op.name,
                node.source or node.name,
                tuple(cls.__name__ for cls in RULES),
                "linear domain",
            )
