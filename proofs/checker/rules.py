"""The leaf rules: interval replay, linear (back-substitution) replay, counterexamples.

A leaf's region is an input box plus ReLU phase constraints ``phases[(k, j)] = -1``
(pre-activation of neuron j of ReLU layer k is <= 0) or ``+1`` (>= 0). Bounds are kept
for every value of the network (``bounds[p]`` is the value *entering* layer p; the last
entry is the output) and are rigorous over the reals (see :mod:`arith`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from proofs.checker import arith
from proofs.checker.model import Network


class Empty(Exception):
    """The leaf's region is empty (its split constraints contradict the bounds)."""


class NotProved(Exception):
    """A rule did not prove its leaf; the message says why."""


def _relaxation(lower, upper, alpha):
    """Per-neuron coefficients of the ReLU bounds used in back-substitution.

    Soundness: for ``z`` in ``[l, u]``: ``relu(z) >= alpha z`` for any alpha in [0, 1];
    for ``l < 0 < u``: ``relu(z) <= a z + t`` whenever ``a l + t >= 0`` and
    ``a u + t >= u`` (relu is convex, so a line above it at both ends is above it in
    between); ``t = max(-a l, u - a u)`` is computed rounded upwards, so the line is
    valid whatever float ``a`` is. Neurons with ``u <= 0`` output 0, with ``l >= 0`` their
    input.
    """
    inactive = upper <= 0
    active = (lower >= 0) & ~inactive
    unstable = ~inactive & ~active
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = np.clip(np.where(unstable, upper / (upper - lower), 0.0), 0.0, 1.0)
        t = np.maximum(arith.up(-a * lower), arith.up(upper - arith.down(a * upper)))
    t = np.where(unstable, t, 0.0)
    if alpha is None:  # the CROWN/DeepPoly adaptive choice
        alpha = np.where(upper > -lower, 1.0, 0.0)
    d_pos = np.where(active, 1.0, np.where(inactive, 0.0, alpha))
    d_neg = np.where(active, 1.0, np.where(inactive, 0.0, a))
    return d_pos, d_neg, t


def backsubstitute(net: Network, Lam, stop: int, bounds, relax) -> np.ndarray:
    """Rigorous lower bounds of ``Lam @ v`` where v is the value leaving layer ``stop - 1``.

    Soundness: the invariant is ``target >= Lam v_q + c`` over the leaf region, for the
    exact (float-valued) entries of Lam and c. Through a linear layer the exact product
    ``Lam W`` differs from the stored float product by E with
    ``|E| <= gamma_n |Lam| |W| + n eta`` (Higham 3.5), so
    ``Lam W v >= fl(Lam W) v - |E| |v|`` with ``|v| <= mz = max(|l|, |u|)`` from ``bounds``;
    ``|E| mz`` is bounded by ``gamma_n |Lam| (|W| mz) + n eta sum(mz)``, whose float value
    (two products of nonnegative terms, relative error below 2 gamma) is doubled and
    rounded up; the slack goes into c, rounded down. ReLU layers use :func:`_relaxation`.
    At the input, ``min over the box of Lam x + c`` is taken coordinate-wise, rounded down.
    """
    rows = Lam.shape[0]
    c = np.zeros(rows)
    gamma1 = 2.0 * arith.gamma(1) * (1.0 + 2.0**-20)
    with np.errstate(over="ignore", invalid="ignore"):
        for q in range(stop - 1, -1, -1):
            layer = net.layers[q]
            lo, hi = bounds[q]
            mz = np.maximum(np.abs(lo), np.abs(hi))
            if layer.kind == "affine":
                # sum_j |fl(Lam W) - Lam W|_rj mz_j <= gamma_n (|Lam| (|W| mz))_r + n eta |mz|_1,
                # evaluated as a matrix-vector chain (nonnegative terms; slack factor 2)
                n = layer.W.shape[1]
                chain = np.abs(Lam) @ (np.abs(layer.W) @ mz)
                err = arith.up(chain * (2.0 * arith.gamma(n) * (1.0 + 2.0**-20)))
                err = arith.up(
                    err + 3.0 * (n + Lam.shape[1]) * arith.ETA * (float(np.sum(mz)) + 1.0)
                )
                A = np.concatenate([Lam, c[:, None]], axis=1)
                base = arith.matvec_lower(A, np.concatenate([layer.b, [1.0]]))
                c = arith.down(base - err)
                Lam = Lam @ layer.W
            elif layer.kind == "add":
                A = np.concatenate([Lam, c[:, None]], axis=1)
                c = arith.matvec_lower(A, np.concatenate([layer.b, [1.0]]))
            else:
                if layer.kind == "scale":
                    new = Lam * layer.b[None, :]
                    T, t = np.zeros_like(Lam), np.zeros(Lam.shape[1])
                else:
                    d_pos, d_neg, t = relax[q]
                    new = np.where(Lam >= 0, Lam * d_pos[None, :], Lam * d_neg[None, :])
                    T = np.minimum(Lam, 0.0)
                E = np.abs(new) * gamma1 + 3.0 * arith.ETA
                A = np.concatenate([T, -E, c[:, None]], axis=1)
                c = arith.matvec_lower(A, np.concatenate([t, mz, [1.0]]))
                Lam = new
            if not arith.finite(Lam, c):
                raise NotProved("non-finite value in back-substitution")
        lo, hi = bounds[0]
        A = np.concatenate([np.maximum(Lam, 0.0), np.minimum(Lam, 0.0), c[:, None]], axis=1)
        result = arith.matvec_lower(A, np.concatenate([lo, hi, [1.0]]))
    if not arith.finite(result):
        raise NotProved("non-finite linear bound")
    return result


def layer_bounds(
    net: Network, lower, upper, phases: dict, slopes: dict | None, linear: bool, inherited=None
):
    """Bounds of every value over the leaf region, and the ReLU relaxations used.

    With ``linear`` the pre-activation bounds of every ReLU layer are the intersection of
    interval propagation and back-substitution (with ``slopes``, a dict from ReLU ordinal
    to alpha vectors; a missing layer uses the adaptive choice). ``inherited`` (ReLU
    ordinal -> (lo, hi), bounds valid on a region containing this one) is intersected
    too. Split constraints clamp the pre-activation bounds; an empty interval raises
    :class:`Empty`.
    """
    bounds = [(np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64))]
    relax: dict[int, tuple] = {}
    ordinal = 0
    for p, layer in enumerate(net.layers):
        lo, hi = bounds[-1]
        if layer.kind == "relu":
            alpha = None if slopes is None else slopes.get(ordinal)
            relax[p] = _relaxation(lo, hi, alpha)
            bounds.append((np.maximum(lo, 0.0), np.maximum(hi, 0.0)))
            ordinal += 1
            continue
        lo, hi = arith.interval_layer(layer.kind, layer.W, layer.b, lo, hi)
        feeds_relu = p + 1 < len(net.layers) and net.layers[p + 1].kind == "relu"
        if not arith.finite(lo, hi):
            raise NotProved(f"non-finite interval bound after layer {p}")
        if feeds_relu:
            if linear:
                m = lo.size
                eye = np.eye(m)
                both = backsubstitute(net, np.concatenate([eye, -eye]), p + 1, bounds, relax)
                lo, hi = np.maximum(lo, both[:m]), np.minimum(hi, -both[m:])
            if inherited is not None and ordinal in inherited:
                lo = np.maximum(lo, inherited[ordinal][0])
                hi = np.minimum(hi, inherited[ordinal][1])
            for (k, j), phase in phases.items():
                if k == ordinal:
                    if phase in (-1, 2):  # pre-activation <= 0
                        hi = hi.copy()
                        hi[j] = min(hi[j], 0.0)
                    if phase in (1, 2):  # pre-activation >= 0
                        lo = lo.copy()
                        lo[j] = max(lo[j], 0.0)
            if np.any(lo > hi):
                raise Empty(f"ReLU layer {ordinal}: empty pre-activation interval")
        bounds.append((lo, hi))
    return bounds, relax


def rows_proved_interval(bounds, C: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Which rows of ``C y <= d`` are unreachable by the output box alone."""
    lo, hi = bounds[-1]
    A = np.concatenate([np.maximum(C, 0.0), np.minimum(C, 0.0)], axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        low = arith.matvec_lower(A, np.concatenate([lo, hi]))
    return np.isfinite(low) & (low > d)


def node_bounds(net: Network, lower, upper, phases: dict, inherited) -> dict | None:
    """Pre-activation bounds (adaptive linear) of a split node, for its children to inherit.

    Raises :class:`Empty` when the node's region is empty; None when not finite.
    """
    try:
        bounds, _ = layer_bounds(net, lower, upper, phases, None, True, inherited)
    except NotProved:
        return inherited
    return {k: bounds[p] for k, p in enumerate(net.relu_layers)}


def check_leaf(
    net, lower, upper, phases, rule, slopes, slopes_everywhere, polytopes, inherited=None
) -> str:
    """Check one leaf; return a short description or raise NotProved.

    The intermediate bounds are computed with the adaptive slopes and, when that does not
    suffice and ``slopes`` are given, again with ``slopes`` (only the latter when
    ``slopes_everywhere``); each polytope's rows are tried with the interval test and with
    back-substitution using the given and the adaptive final slopes. Every combination is
    a sound bound, so any success excludes the polytope on the leaf.
    """
    linear = rule in ("linear", "infeasible")
    if slopes_everywhere:
        variants = [slopes]
    elif slopes is not None:
        variants = [None, slopes]
    else:
        variants = [None]
    remaining = list(range(len(polytopes)))
    best = {}
    for inner in variants:
        try:
            bounds, relax = layer_bounds(net, lower, upper, phases, inner, linear, inherited)
        except Empty:
            return "region empty"
        if rule == "infeasible":
            continue
        finals = [relax]
        if slopes is not None and inner is None:
            finals.append(_final_relax(net, bounds, slopes))
        still = []
        for index in remaining:
            C, d = polytopes[index]
            if rows_proved_interval(bounds, C, d).any():
                continue
            if rule == "linear":
                for final in finals:
                    gap = backsubstitute(net, C, len(net.layers), bounds, final) - d
                    best[index] = max(best.get(index, -np.inf), float(np.max(gap, initial=-np.inf)))
                    if np.any(gap > 0):
                        break
                else:
                    still.append(index)
                continue
            still.append(index)
        remaining = still
        if not remaining:
            return "closed"
    if rule == "infeasible":
        raise NotProved("the leaf's region is not shown empty")
    index = remaining[0]
    if rule != "linear":
        raise NotProved(f"unsafe polytope {index} not excluded by interval bounds")
    raise NotProved(
        f"unsafe polytope {index}: best linear lower bound minus d is "
        f"{best.get(index, -np.inf):.3g}, not positive"
    )


def _final_relax(net: Network, bounds, slopes: dict) -> dict:
    relax = {}
    for ordinal, p in enumerate(net.relu_layers):
        lo, hi = bounds[p]
        relax[p] = _relaxation(lo, hi, slopes.get(ordinal))
    return relax


# ------------------------------------------------------------------------- exact


def exact_output(net: Network, x: np.ndarray) -> list[Fraction]:
    """The exact real-arithmetic output at the float input ``x``, as Fractions."""
    ints, e = arith.exact_forward(net.layers, x)
    scale = Fraction(2) ** e
    return [Fraction(int(i)) * scale for i in ints]


def in_rows(y: list[Fraction], rows) -> bool:
    """Whether ``y`` satisfies every row ``(c, d, strict)`` exactly."""
    for c, d, strict in rows:
        value = sum((ci * yi for ci, yi in zip(c, y, strict=False) if ci), Fraction(0))
        if value > d or (strict and value == d):
            return False
    return True
