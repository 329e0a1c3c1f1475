"""Zonotope (DeepZ) transfer functions: one per op class, collected in :data:`TRANSFER`.

Affine and structural ops are exact on the zonotope (plus a floating-point error term in
the box). ReLU, LeakyReLU, Sigmoid, Tanh and Exp use DeepZ parallelograms
(:mod:`domains.relaxations`). Mul, Div, Softmax, Log and Sqrt (and Abs, Clip and MaxPool
where the input's sign or order is not decided) fall back to the interval transfer of the
input's concrete bounds and introduce one fresh noise symbol per output neuron: sound,
but all correlation through that op is lost.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from domains.interval.element import Interval
from domains.interval.transfer import TRANSFER as INTERVAL
from domains.interval.transfer import conv2d, conv_terms, pool_terms, reduced_terms
from domains.relaxations import (
    exp_parallelogram,
    leaky_relu_parallelogram,
    sigmoid_parallelogram,
    tanh_parallelogram,
)
from domains.rounding import (
    U,
    abs_constant,
    center_radius,
    dot_error,
    elementwise_error,
    up,
)
from domains.zonotope.element import NoiseSymbols, Zonotope, shared_noise
from prover.ir import ops
from prover.ir.interpreter import Table
from prover.semantics import CONCRETE
from prover.tensors import constant

# ------------------------------------------------------------------------- helpers


def add_fresh(z: Zonotope, radius: torch.Tensor) -> Zonotope:
    """Add ``radius * eps_new`` with one fresh noise symbol per neuron whose radius is
    nonzero (or NaN) in some batch row; without an allocator, the radius joins the box."""
    batch = max(z.batch, radius.shape[0])
    flat = radius.expand((batch,) + z.shape).reshape(batch, -1)
    idx = torch.nonzero((flat != 0).any(dim=0)).reshape(-1)
    known = z.__dict__.get("_radius")
    if idx.numel() == 0:
        return z
    new_radius = None if known is None else up(known + radius)
    if z.noise is None:
        out = dataclasses.replace(z, box=up(z.box + radius))
        return out if new_radius is None else out.with_radius(new_radius)
    start = z.noise.take(idx.numel())
    gens = z.padded(start).expand((batch, start) + z.shape)
    fresh = flat.new_zeros((batch, idx.numel(), flat.shape[1]))
    fresh[:, torch.arange(idx.numel(), device=idx.device), idx] = flat[:, idx]
    fresh = fresh.reshape((batch, idx.numel()) + z.shape)
    out = Zonotope(
        z.center.expand((batch,) + z.shape),
        torch.cat([gens, fresh], dim=1),
        z.box.expand((batch,) + z.shape),
        z.noise,
    )
    # Each fresh column holds one neuron's radius: the radius grows by exactly that.
    return out if new_radius is None else out.with_radius(new_radius.expand((batch,) + z.shape))


def elementwise(z: Zonotope, a: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> Zonotope:
    """The zonotope of ``f(x)`` given ``a x + lo <= f(x) <= a x + hi`` on ``z``'s range.

    Soundness: ``f(x) = a x + mid + rad eps_new`` for some ``eps_new`` in [-1, 1], with
    ``[mid - rad, mid + rad]`` containing ``[lo, hi]`` exactly (``rad`` rounded up);
    ``a x`` is applied exactly to the center and every generator up to one rounding each,
    and adding ``mid`` one more, bounded by ``gamma`` times ``|a| (|c| + sum |G| + box) +
    |mid|`` in the box (:func:`~domains.rounding.elementwise_error`).

    The output's radius is bounded without summing its generators again:
    ``sum_k |fl(a G_k)| <= (1 + u) |a| sum_k |G_k| <= (1 + u) |a| radius(x)``.
    """
    mid = lo / 2 + hi / 2
    rad = torch.maximum(up(hi - mid), up(mid - lo))
    aa = a.abs()
    err = elementwise_error(up(aa * z.magnitude() + mid.abs()), 4)
    box = up(aa * z.box + err)
    out = Zonotope(a * z.center + mid, a.unsqueeze(1) * z.generators, box, z.noise)
    scaled = up(up(aa * z.radius()) * (1 + 4 * U))
    out = out.with_radius(up(scaled + box))
    return add_fresh(out, rad)


def from_interval(lo: torch.Tensor, hi: torch.Tensor, noise: NoiseSymbols | None) -> Zonotope:
    """A zonotope containing the box ``[lo, hi]``, one fresh symbol per varying neuron."""
    mid, rad = center_radius(lo, hi)
    return add_fresh(Zonotope.constant(mid, noise), rad)


def _fallback(op: ops.Op, *xs: Zonotope) -> Zonotope:
    """Interval fallback: concretize the inputs, apply the interval rule, fresh symbols.

    Soundness: every input lies in its concrete bounds (:meth:`Zonotope.bounds`), the
    interval rule is sound (``domains.interval.transfer``), and :func:`from_interval`
    contains the interval it is given.
    """
    boxes = [Interval(*x.bounds()) for x in xs]
    out = INTERVAL.rules[type(op)](op, *boxes)
    return from_interval(out.lower, out.upper, shared_noise(*xs))


def _map_generators(z: Zonotope, fn, out_shape: tuple[int, ...]) -> torch.Tensor:
    if z.n_generators == 0:
        return z.center.new_zeros((z.batch, 0) + tuple(out_shape))
    mapped = fn(z.flat_generators())
    return mapped.reshape((z.batch, z.n_generators) + tuple(mapped.shape[1:]))


def _linear(z: Zonotope, affine, linear, abs_linear, abs_bias, n_terms: int) -> Zonotope:
    """Apply ``x -> linear(x) + bias`` (``affine``) to a zonotope, error in the box.

    Soundness: exact for the center, each generator and (with ``|W|``) the box; the
    rounding error of all of them is at most ``gamma_n`` times ``|W| (|c| + sum_k |G_k| +
    box) + |b|`` (Higham 2002, eq. 3.5, summed over the dot products), added to the box.
    """
    c = affine(z.center)
    gens = _map_generators(z, linear, tuple(c.shape[1:]))
    mag = abs_linear(z.magnitude())
    if abs_bias is not None:
        mag = mag + abs_bias
    err = dot_error(mag, n_terms + 2)
    return Zonotope(c, gens, up(abs_linear(z.box) + err), z.noise)


# --------------------------------------------------------------------- linear ops


def _gemm(op: ops.Gemm, z: Zonotope) -> Zonotope:
    """Soundness: see :func:`_linear` (a Gemm is exact on zonotopes, Singh et al. 2018)."""
    like = z.center
    W, Wa = constant(op.weight, like), abs_constant(op.weight, like)
    b, ba = constant(op.bias, like), abs_constant(op.bias, like)
    c = z.center @ W.T + b
    diagonal = z.diagonal_generators
    if diagonal is not None and len(z.shape) == 1:
        # G_k = r_k e_{idx_k}, so W G_k = r_k W[:, idx_k]: one product per entry.
        idx, radius = diagonal
        gens = radius.unsqueeze(-1) * W.T[idx].unsqueeze(0)
    else:
        gens = z.generators @ W.T
    mag = z.magnitude() @ Wa.T + ba
    err = dot_error(mag, op.weight.shape[1] + 3)
    return Zonotope(c, gens, up(z.box @ Wa.T + err), z.noise)


def _conv(op: ops.Conv, z: Zonotope) -> Zonotope:
    """Soundness: see :func:`_linear`; a convolution is a linear map."""
    like = z.center
    W, Wa = constant(op.weight, like), abs_constant(op.weight, like)
    b, ba = constant(op.bias, like), abs_constant(op.bias, like)
    return _linear(
        z,
        lambda t: conv2d(op, t, W, b),
        lambda t: conv2d(op, t, W, None),
        lambda t: conv2d(op, t, Wa, None),
        ba.reshape(-1, 1, 1),
        conv_terms(op),
    )


def _positive_linear(n_terms_of):
    def rule(op: ops.Op, z: Zonotope) -> Zonotope:
        concrete = CONCRETE.rules[type(op)]
        apply = lambda t: concrete(op, t)
        return _linear(z, apply, apply, apply, None, n_terms_of(op, z) + 4)

    rule.__doc__ = (
        "Soundness: a linear map with non-negative weights (pooling average, sum, mean); "
        "see _linear. The division by the count adds at most two roundings (n + 4)."
    )
    return rule


_average_pool = _positive_linear(lambda op, z: 2 * pool_terms(op))
_reduce = _positive_linear(lambda op, z: reduced_terms(op, z.shape))


def _add_const(op: ops.AddConst, z: Zonotope) -> Zonotope:
    """Soundness: only the center moves; its rounding (``u |c + v|``) joins the box."""
    v = constant(op.value, z.center)
    err = elementwise_error(up(z.center.abs() + v.abs()), 2)
    return Zonotope(z.center + v, z.generators, up(z.box + err), z.noise)


def _mul_const(op: ops.MulConst, z: Zonotope) -> Zonotope:
    """Soundness: ``v x`` is linear; see :func:`elementwise` with ``lo = hi = 0``."""
    v = constant(op.value, z.center).expand_as(z.center)
    zero = torch.zeros_like(z.center)
    return elementwise(z, v, zero, zero)


def _div_const(op: ops.DivConst, z: Zonotope) -> Zonotope:
    """Soundness: ``x / v`` is linear; each quotient is correctly rounded (relative
    error ``u``), bounded by ``gamma`` times the magnitude over ``|v|`` in the box."""
    v = constant(op.value, z.center)
    va = v.abs()
    err = elementwise_error(up(z.magnitude() / va), 3)
    gens = z.generators / v
    return Zonotope(z.center / v, gens, up(up(z.box / va) + err), z.noise)


def _neg(op: ops.Neg, z: Zonotope) -> Zonotope:
    """Soundness: negation is exact."""
    return Zonotope(-z.center, -z.generators, z.box, z.noise)


def _add_sub(sign: float):
    def rule(op: ops.Op, a: Zonotope, b: Zonotope) -> Zonotope:
        k = max(a.n_generators, b.n_generators)
        gens = a.padded(k) + sign * b.padded(k)
        err = elementwise_error(up(a.magnitude() + b.magnitude()), 2)
        box = up(up(a.box + b.box) + err)
        return Zonotope(a.center + sign * b.center, gens, box, shared_noise(a, b))

    rule.__doc__ = (
        "Soundness: sums of zonotopes over shared noise symbols are exact (generators "
        "add column by column, missing columns are zero); boxes add; each sum rounds once "
        "(error in the box)."
    )
    return rule


def _mul(op: ops.Mul, a: Zonotope, b: Zonotope) -> Zonotope:
    """Mul: exact scaling when one factor is an exact constant, else interval fallback.

    Soundness: ``x * v`` with ``v`` constant is linear (:func:`elementwise`); otherwise
    :func:`_fallback`.
    """
    for x, y in ((a, b), (b, a)):
        if y.is_exact_constant():
            shape = torch.broadcast_shapes(x.center.shape, y.center.shape)
            coef = y.center.expand(shape)
            zero = torch.zeros(shape, dtype=x.center.dtype, device=x.center.device)
            return elementwise(dataclasses.replace(x, noise=shared_noise(a, b)), coef, zero, zero)
    return _fallback(op, a, b)


def _constant(op: ops.ConstantOf) -> Zonotope:
    """Soundness: a constant is its own exact zonotope."""
    return Zonotope.constant(constant(op.value).unsqueeze(0))


# ---------------------------------------------------------------- nonlinear ops


def _parallelogram(relax):
    def rule(op: ops.Op, z: Zonotope) -> Zonotope:
        lower, upper = z.bounds()
        return elementwise(z, *relax(op, lower, upper))

    rule.__doc__ = (
        "Soundness: DeepZ parallelogram a x + [lo, hi] from domains.relaxations (see the "
        "lemma named there), applied by elementwise()."
    )
    return rule


_relu = _parallelogram(lambda op, lb, ub: leaky_relu_parallelogram(lb, ub, 0.0))
_leaky_relu = _parallelogram(lambda op, lb, ub: leaky_relu_parallelogram(lb, ub, op.alpha))
_sigmoid = _parallelogram(lambda op, lb, ub: sigmoid_parallelogram(lb, ub))
_tanh = _parallelogram(lambda op, lb, ub: tanh_parallelogram(lb, ub))
_exp = _parallelogram(lambda op, lb, ub: exp_parallelogram(lb, ub))


def _abs(op: ops.Abs, z: Zonotope) -> Zonotope:
    """Soundness: ``|x| = x`` when ``l >= 0`` and ``-x`` when ``u <= 0`` (exact); otherwise
    ``|x|`` lies in ``[0, max(-l, u)]`` (slope 0, fresh symbol)."""
    lb, ub = z.bounds()
    zero = torch.zeros_like(lb)
    one = torch.ones_like(lb)
    a = torch.where(lb >= 0, one, torch.where(ub <= 0, -one, zero))
    hi = torch.where(a == 0, torch.maximum(-lb, ub), zero)
    return elementwise(z, a, zero, hi)


def _clip(op: ops.Clip, z: Zonotope) -> Zonotope:
    """Soundness: identity where ``[l, u]`` lies inside ``[min, max]``; elsewhere clip is
    monotone, so ``[clip(l), clip(u)]`` holds it (slope 0, fresh symbol)."""
    lb, ub = z.bounds()
    lo_ok = torch.ones_like(lb, dtype=torch.bool) if op.min is None else lb >= op.min
    hi_ok = torch.ones_like(lb, dtype=torch.bool) if op.max is None else ub <= op.max
    inside = lo_ok & hi_ok
    zero = torch.zeros_like(lb)
    a = inside.to(lb.dtype)
    lo = torch.where(inside, zero, torch.clamp(lb, min=op.min, max=op.max))
    hi = torch.where(inside, zero, torch.clamp(ub, min=op.min, max=op.max))
    return elementwise(z, a, lo, hi)


def _maxpool(op: ops.MaxPool, z: Zonotope) -> Zonotope:
    """MaxPool: exact where one input dominates its window, else the window's bounds.

    Soundness: if ``l_i >= u_j`` for every other ``j`` of the window, ``max = x_i``
    exactly; otherwise the maximum lies in ``[max_j l_j, max_j u_j]`` (slope 0, fresh
    symbol). Padding is ``-inf`` in the bounds, so it never dominates nor raises a bound.
    """
    channels, height, width = z.shape
    _, out_h, out_w = op.infer_shape(z.shape)
    top, left, bottom, right = op.pads
    (kh, kw), (sh, sw), (dh, dw) = op.kernel, op.strides, op.dilations
    extra_b = max(0, (out_h - 1) * sh + dh * (kh - 1) + 1 - (height + top + bottom))
    extra_r = max(0, (out_w - 1) * sw + dw * (kw - 1) + 1 - (width + left + right))
    pads = (left, right + extra_r, top, bottom + extra_b)
    kk = kh * kw

    def windows(t: torch.Tensor, value: float) -> torch.Tensor:
        t = F.pad(t, pads, value=value)
        cols = F.unfold(t, (kh, kw), dilation=(dh, dw), stride=(sh, sw))
        rows = (t.shape[2] - dh * (kh - 1) - 1) // sh + 1
        cols = cols.reshape(t.shape[0], channels, kk, rows, -1)[:, :, :, :out_h, :out_w]
        return cols.reshape(t.shape[0], channels, kk, out_h * out_w)

    lower, upper = z.bounds()
    lw, uw = windows(lower, -math.inf), windows(upper, -math.inf)
    best_l, arg = lw.max(dim=2, keepdim=True)
    others = uw.scatter(2, arg, -math.inf).amax(dim=2, keepdim=True)
    dominant = (best_l >= others).squeeze(2)
    top_u = uw.amax(dim=2)
    best_l = best_l.squeeze(2)

    def pick(t: torch.Tensor) -> torch.Tensor:
        return windows(t, 0.0).gather(2, arg.expand(t.shape[0], -1, -1, -1)).squeeze(2)

    batch, k = z.batch, z.n_generators
    center = pick(z.center).reshape(batch, channels, out_h, out_w)
    box = pick(z.box).reshape(batch, channels, out_h, out_w)
    if k:
        flat = windows(z.flat_generators(), 0.0).reshape(batch, k, channels, kk, -1)
        index = arg.unsqueeze(1).expand(batch, k, channels, 1, out_h * out_w)
        gens = flat.gather(3, index).reshape(batch, k, channels, out_h, out_w)
    else:
        gens = center.new_zeros((batch, 0, channels, out_h, out_w))
    picked = Zonotope(center, gens, box, z.noise)
    shape = (batch, channels, out_h, out_w)
    zero = torch.zeros(shape, dtype=center.dtype, device=center.device)
    dominant = dominant.reshape(shape)
    lo = torch.where(dominant, zero, best_l.reshape(shape))
    hi = torch.where(dominant, zero, top_u.reshape(shape))
    return elementwise(picked, dominant.to(center.dtype), lo, hi)


# ------------------------------------------------------------------- structural ops


def _structural(op: ops.Op, *zs: Zonotope) -> Zonotope:
    """Reshape, Transpose, Slice, Gather, Pad, Concat: exact linear rearrangements.

    Soundness: these ops only move values (Pad inserts a constant into the center and
    zeros into generators and box), so applying them to center, every generator column
    and box gives exactly the image zonotope. Inputs are first padded to one generator
    count and one batch size so that columns keep their meaning.
    """
    rule = CONCRETE.rules[type(op)]
    zero_op = dataclasses.replace(op, value=0.0) if isinstance(op, ops.Pad) else op
    k = max(z.n_generators for z in zs)
    batch = max(z.batch for z in zs)
    center = rule(op, *(z.center for z in zs))
    box = rule(zero_op, *(z.box for z in zs))
    out_shape = tuple(center.shape[1:])
    if k == 0:
        gens = center.new_zeros((center.shape[0], 0) + out_shape)
    else:
        flats = [
            z.padded(k).expand((batch, k) + z.shape).reshape((batch * k,) + z.shape) for z in zs
        ]
        gens = rule(zero_op, *flats).reshape((batch, k) + out_shape)
    out = Zonotope(center, gens, box, shared_noise(*zs))
    if isinstance(op, ops.Reshape) and zs[0].diagonal_generators is not None:
        out.__dict__["diagonal"] = zs[0].diagonal_generators  # C-order keeps flat positions
    return out


TRANSFER = Table(
    "zonotope domain",
    {
        ops.Gemm: _gemm,
        ops.Conv: _conv,
        ops.AddConst: _add_const,
        ops.MulConst: _mul_const,
        ops.DivConst: _div_const,
        ops.Neg: _neg,
        ops.Add: _add_sub(1.0),
        ops.Sub: _add_sub(-1.0),
        ops.Mul: _mul,
        ops.Div: _fallback,
        ops.ConstantOf: _constant,
        ops.Relu: _relu,
        ops.LeakyRelu: _leaky_relu,
        ops.Sigmoid: _sigmoid,
        ops.Tanh: _tanh,
        ops.Exp: _exp,
        ops.Log: _fallback,
        ops.Sqrt: _fallback,
        ops.Abs: _abs,
        ops.Clip: _clip,
        ops.Softmax: _fallback,
        ops.MaxPool: _maxpool,
        ops.AveragePool: _average_pool,
        ops.ReduceSum: _reduce,
        ops.ReduceMean: _reduce,
        ops.Reshape: _structural,
        ops.Transpose: _structural,
        ops.Concat: _structural,
        ops.Slice: _structural,
        ops.Gather: _structural,
        ops.Pad: _structural,
    },
)
