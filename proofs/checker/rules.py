"""The leaf rules: interval replay, linear (back-substitution) replay, counterexamples.

A leaf's region is an input box plus ReLU phase constraints ``phases[(k, j)] = -1``
(pre-activation of neuron j of ReLU layer k is <= 0) or ``+1`` (>= 0). Bounds are kept
for every value of the network (``bounds[p]`` is the value *entering* layer p; the last
entry is the output) and are rigorous over the reals (see :mod:`arith`). Regions are
processed in stacks (a leading batch axis); every region's arithmetic is independent.
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


EMPTY = "empty"  # what :func:`node_bounds` gives for a region shown empty


def _consts(layer) -> dict:
    """Constants derived once from a layer's weights: ``|W|``, ``[W+, W-, b]``, ``[b, 1]``."""
    if not layer.cache and layer.b is not None:
        layer.cache["b1"] = np.concatenate([layer.b, [1.0]])
        if layer.kind == "affine":
            W = layer.W
            layer.cache["absW"] = np.abs(W)
            parts = [np.maximum(W, 0.0), np.minimum(W, 0.0), layer.b[:, None]]
            layer.cache["ibp"] = np.concatenate(parts, axis=1)
    return layer.cache


def _relaxation(lower, upper, alpha):
    """Per-neuron coefficients of the ReLU bounds used in back-substitution.

    Soundness: for ``z`` in ``[l, u]``: ``relu(z) >= alpha z`` for any alpha in [0, 1];
    for ``l < 0 < u``: ``relu(z) <= a z + t`` whenever ``a l + t >= 0`` and
    ``a u + t >= u`` (relu is convex, so a line above it at both ends is above it in
    between); ``t = max(-a l, u - a u)`` is computed rounded upwards, so the line is
    valid whatever float ``a`` is. Neurons with ``u <= 0`` output 0, with ``l >= 0`` their
    input. A NaN entry of ``alpha`` (or ``alpha`` None) means the adaptive choice.
    """
    inactive = upper <= 0
    active = (lower >= 0) & ~inactive
    unstable = ~inactive & ~active
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = np.clip(np.where(unstable, upper / (upper - lower), 0.0), 0.0, 1.0)
        t = np.maximum(arith.up(-a * lower), arith.up(upper - arith.down(a * upper)))
    t = np.where(unstable, t, 0.0)
    adaptive = np.where(upper > -lower, 1.0, 0.0)  # the CROWN/DeepPoly adaptive choice
    alpha = adaptive if alpha is None else np.where(np.isnan(alpha), adaptive, alpha)
    d_pos = np.where(active, 1.0, np.where(inactive, 0.0, alpha))
    d_neg = np.where(active, 1.0, np.where(inactive, 0.0, a))
    return d_pos, d_neg, t


def backsubstitute(net: Network, Lam, stop: int, bounds, relax, c=None) -> np.ndarray:
    """Rigorous lower bounds of ``Lam @ v + c`` where v is the value leaving layer ``stop - 1``.

    ``bounds`` hold one region (vectors) or a stack of regions (a leading batch axis);
    ``Lam`` is one matrix for all or one per region.

    Soundness: the invariant is ``target >= Lam v_q + c`` over the leaf region, for the
    exact (float-valued) entries of Lam and c. Through a linear layer the exact product
    ``Lam W`` differs from the stored float product by E with
    ``|E| <= gamma_n |Lam| |W| + n eta`` (Higham 3.5), so
    ``Lam W v >= fl(Lam W) v - |E| |v|`` with ``|v| <= mz = max(|l|, |u|)`` from ``bounds``;
    ``|E| mz`` is bounded by ``gamma_n |Lam| (|W| mz) + n eta sum(mz)``, whose float value
    (two products of nonnegative terms, relative error below 2 gamma) is doubled and
    rounded up; the slack goes into c, rounded down. ReLU layers use :func:`_relaxation`.
    At the input, ``min over the box of Lam x + c`` is taken coordinate-wise, rounded down.
    Each stacked region is an independent computation, so each gets the same guarantee.
    """
    batch = bounds[0][0].shape[:-1]
    Lam = np.broadcast_to(Lam, batch + Lam.shape[-2:])
    c = np.zeros(Lam.shape[:-1]) if c is None else np.broadcast_to(c, Lam.shape[:-1])
    gamma1 = 2.0 * arith.gamma(1) * (1.0 + 2.0**-20)
    with np.errstate(over="ignore", invalid="ignore"):
        for q in range(stop - 1, -1, -1):
            layer = net.layers[q]
            lo, hi = bounds[q]
            mz = np.maximum(np.abs(lo), np.abs(hi))
            if layer.kind == "add":
                A = np.concatenate([Lam, c[..., None]], axis=-1)
                c = arith.matvec_lower(A, _consts(layer)["b1"])
            elif layer.kind == "affine":
                # c += Lam b, and sum_j |fl(Lam W) - Lam W|_rj mz_j <= gamma_n (|Lam| (|W| mz))_r
                # + n eta |mz|_1, evaluated as a matrix-vector chain (nonnegative terms;
                # slack factor 2); |Lam| |b| and |Lam| (|W| mz) are one product
                n, m = layer.W.shape[1], Lam.shape[-1]
                right = np.broadcast_to(np.abs(layer.b), mz.shape[:-1] + (m,))
                right = np.stack([arith.dot(_consts(layer)["absW"], mz), right], axis=-1)
                both = np.abs(Lam) @ right
                c = arith.down(c + arith.lower_from(arith.dot(Lam, layer.b), both[..., 1], m))
                err = arith.up(both[..., 0] * (2.0 * arith.gamma(n) * (1.0 + 2.0**-20)))
                total = np.sum(mz, axis=-1, keepdims=True) + 1.0
                err = arith.up(err + 3.0 * (n + m) * arith.ETA * total)
                c = arith.down(c - err)
                Lam = Lam @ layer.W
            else:
                # new = fl(Lam d), d the lower slope where Lam >= 0, else the upper one (one
                # of the two products is 0: the sum is exact); c += T t - E mz, T = min(Lam,
                # 0), E = gamma1 |new| + 3 eta >= |fl(Lam d) - Lam d|: the eta part apart
                # (4 eta fl(sum mz) >= 3 eta sum mz) keeps subnormals (slow) out of products.
                # T t and |new| mz have terms of one sign, so S = |P| in lower_from.
                n = Lam.shape[-1]
                total = np.sum(mz, axis=-1, keepdims=True) + 1.0
                slack = arith.up(4.0 * arith.ETA * total)
                if layer.kind == "scale":
                    Lam = Lam * layer.b
                else:
                    d_pos, d_neg, t = relax[q]
                    T, new = np.minimum(Lam, 0.0), np.maximum(Lam, 0.0)
                    neg = arith.dot(T, t)
                    c = arith.down(c + arith.lower_from(neg, -neg, n))
                    new *= d_pos[..., None, :]
                    T *= d_neg[..., None, :]
                    new += T
                    Lam = new
                pos = arith.dot(np.abs(Lam), mz)
                slack = arith.up(arith.up(gamma1 * -arith.lower_from(-pos, pos, n)) + slack)
                c = arith.down(c - slack)
            if not arith.finite(c):  # a non-finite Lam makes the next c non-finite
                raise NotProved("non-finite value in back-substitution")
        lo, hi = bounds[0]
        one = np.ones(lo.shape[:-1] + (1,))
        A = np.concatenate([np.maximum(Lam, 0.0), np.minimum(Lam, 0.0), c[..., None]], axis=-1)
        result = arith.matvec_lower(A, np.concatenate([lo, hi, one], axis=-1))
    if not arith.finite(result, Lam):
        raise NotProved("non-finite linear bound")
    return result


def _clamps(net: Network, phases, batch: tuple) -> dict:
    """Per ReLU ordinal, masks of the split constraints ``z <= 0`` and ``z >= 0``."""
    items = [phases] if isinstance(phases, dict) else phases
    masks: dict[int, tuple] = {}
    for i, item in enumerate(items):
        for (k, j), phase in item.items():
            if k not in masks:
                shape = (len(items), net.layers[net.relu_layers[k]].size)
                masks[k] = (np.zeros(shape, bool), np.zeros(shape, bool))
            masks[k][0][i, j] |= phase in (-1, 2)  # 2: both, pre-activation = 0
            masks[k][1][i, j] |= phase in (1, 2)
    return {
        k: (a.reshape(batch + a.shape[1:]), b.reshape(batch + b.shape[1:]))
        for k, (a, b) in masks.items()
    }


def region_bounds(net: Network, lower, upper, phases, slopes, linear, inherited=None):
    """Bounds of every value over a region (or a stack), the ReLU relaxations, which are empty.

    With ``linear`` the pre-activation bounds of every ReLU layer are the intersection of
    interval propagation and back-substitution (with ``slopes``, a dict from ReLU ordinal
    to alpha vectors, NaN or a missing layer meaning the adaptive choice); ``inherited``
    (ReLU ordinal -> (lo, hi), valid on a region containing this one) is intersected too,
    then split constraints clamp them. ``phases`` is a dict for one region, a list for a
    stack; slopes and inherited bounds carry its batch axis. Returns ``(bounds, relax,
    empty)``; when every region is shown empty the lists stop at that layer.
    """
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    clamps = _clamps(net, phases, lower.shape[:-1])
    bounds, relax = [(lower, upper)], {}
    empty = np.zeros(lower.shape[:-1], bool)
    ordinal = 0
    for p, layer in enumerate(net.layers):
        lo, hi = bounds[-1]
        if layer.kind == "relu":
            alpha = None if slopes is None else slopes.get(ordinal)
            relax[p] = _relaxation(lo, hi, alpha)
            bounds.append((np.maximum(lo, 0.0), np.maximum(hi, 0.0)))
            ordinal += 1
            continue
        const = _consts(layer)["ibp"] if layer.kind == "affine" else layer.b
        lo, hi = arith.interval_layer(layer.kind, const, lo, hi)
        if not arith.finite(lo, hi):
            raise NotProved(f"non-finite interval bound after layer {p}")
        if p + 1 < len(net.layers) and net.layers[p + 1].kind == "relu":
            if inherited is not None and ordinal in inherited:
                lo = np.maximum(lo, inherited[ordinal][0])
                hi = np.minimum(hi, inherited[ordinal][1])
            if linear:  # neurons inactive in every region of the stack and not split: their
                m = lo.shape[-1]  # bounds are never used (output 0), so no back-substitution
                rows = (hi > 0).reshape(-1, m).any(axis=0)
                if ordinal in clamps:
                    rows |= (clamps[ordinal][0] | clamps[ordinal][1]).reshape(-1, m).any(axis=0)
                rows = np.flatnonzero(rows)
                if rows.size:  # +-e_j through this layer first, exactly when it is affine
                    Lam, c, stop = np.concatenate([np.eye(m)[rows], -np.eye(m)[rows]]), None, p + 1
                    if layer.kind == "affine":
                        Lam = np.concatenate([layer.W[rows], -layer.W[rows]])
                        c, stop = np.concatenate([layer.b[rows], -layer.b[rows]]), p
                    both = backsubstitute(net, Lam, stop, bounds, relax, c)
                    lo, hi = lo.copy(), hi.copy()
                    lo[..., rows] = np.maximum(lo[..., rows], both[..., : rows.size])
                    hi[..., rows] = np.minimum(hi[..., rows], -both[..., rows.size :])
            if ordinal in clamps:
                hi = np.where(clamps[ordinal][0], np.minimum(hi, 0.0), hi)
                lo = np.where(clamps[ordinal][1], np.maximum(lo, 0.0), lo)
            empty = empty | np.any(lo > hi, axis=-1)
            if np.all(empty):
                return bounds, relax, empty
        bounds.append((lo, hi))
    return bounds, relax, empty


def layer_bounds(
    net: Network, lower, upper, phases: dict, slopes: dict | None, linear: bool, inherited=None
):
    """:func:`region_bounds` of one region; raises :class:`Empty` when it is shown empty."""
    bounds, relax, empty = region_bounds(net, lower, upper, phases, slopes, linear, inherited)
    if np.any(empty):
        raise Empty("empty pre-activation interval")
    return bounds, relax


def rows_proved_interval(bounds, C: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Which rows of ``C y <= d`` are unreachable by the output box alone."""
    lo, hi = bounds[-1]
    A = np.concatenate([np.maximum(C, 0.0), np.minimum(C, 0.0)], axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        low = arith.matvec_lower(A, np.concatenate([lo, hi], axis=-1))
    return np.isfinite(low) & (low > d)


def _stack(net: Network, items: list, fill: float | None) -> dict | None:
    """Stack per-region dicts (ReLU ordinal -> slopes, or (lo, hi) with ``fill`` for none)."""
    if all(item is None for item in items):
        return None
    out = {}
    for k, p in enumerate(net.relu_layers):
        nan, inf = np.full(net.layers[p].size, np.nan), np.full(net.layers[p].size, fill or 0.0)
        if fill is None:  # slopes: NaN = adaptive
            out[k] = np.stack([it[k] if it and k in it else nan for it in items])
            continue
        lo = np.stack([-inf if it is None else it[k][0] for it in items])
        out[k] = (lo, np.stack([inf if it is None else it[k][1] for it in items]))
    return out


def each(function, net: Network, stack: tuple, *args) -> list:
    """``function`` on the whole stack, or region by region when a bound is not finite."""
    try:
        return function(net, stack, *args)
    except NotProved as exc:
        if len(stack[2]) == 1:
            return [exc]
    return [
        each(function, net, tuple(v[i : i + 1] for v in stack), *args)[0]
        for i in range(len(stack[2]))
    ]


def node_bounds(net: Network, stack: tuple) -> list:
    """Pre-activation bounds (adaptive linear) of split nodes, for their children to inherit.

    ``stack`` is ``(lower, upper, phases, inherited)`` (per node a dict or None). Per node:
    a dict ReLU ordinal -> (lo, hi), :data:`EMPTY` when its region is shown empty, or a
    :class:`NotProved` when the bounds are not finite (the children keep ``inherited``).
    """
    lower, upper, phases, inherited = stack
    bounds, _, empty = region_bounds(
        net, lower, upper, phases, None, True, _stack(net, inherited, np.inf)
    )
    relus = list(enumerate(net.relu_layers))
    return [
        EMPTY if e else {k: (bounds[p][0][i], bounds[p][1][i]) for k, p in relus}
        for i, e in enumerate(empty)
    ]


def check_leaves(net: Network, stack: tuple, rule: str, everywhere: bool, polytopes) -> list:
    """Check leaves sharing rule, slope mode and polytopes; per leaf None (closed) or why not.

    ``stack`` is ``(lower, upper, phases, inherited, slopes)``, per leaf a dict or None
    (all slopes None or all given). The intermediate bounds are computed with the adaptive
    slopes and, for leaves not closed so and with slopes, again with them (only the latter
    when ``everywhere``); each polytope's rows are tried with the interval test and with
    back-substitution using the given and the adaptive final slopes. Every combination is
    a sound bound, so any success excludes the polytope on the leaf.
    """
    lower, upper, phases, inherited, slopes = stack
    given, stacked = _stack(net, slopes, None), _stack(net, inherited, np.inf)
    variants = [given] if everywhere else ([None, given] if given is not None else [None])
    shown = np.zeros((len(phases), len(polytopes)), bool)
    best, done = np.full(shown.shape, -np.inf), np.zeros(len(phases), bool)
    for inner in variants:
        linear = rule in ("linear", "infeasible")
        bounds, relax, empty = region_bounds(net, lower, upper, phases, inner, linear, stacked)
        done |= empty
        if done.all():
            break
        if rule == "infeasible":
            continue
        finals = [relax] + ([_final_relax(net, bounds, given)] if given and not inner else [])
        for index, (C, d) in enumerate(polytopes):
            shown[:, index] |= rows_proved_interval(bounds, C, d).any(axis=-1)
            for final in finals if rule == "linear" else []:
                if not (shown[:, index] | done).all():
                    gap = backsubstitute(net, C, len(net.layers), bounds, final) - d
                    best[:, index] = np.maximum(best[:, index], gap.max(axis=-1, initial=-np.inf))
                    shown[:, index] |= np.any(gap > 0, axis=-1)
        if (done | shown.all(axis=1)).all():
            break
    why = {
        "infeasible": "the leaf's region is not shown empty",
        "interval": "unsafe polytope {j} not excluded by interval bounds",
        "linear": "unsafe polytope {j}: best linear lower bound minus d is {g:.3g}, not positive",
    }[rule]
    first = np.argmin(np.c_[shown, np.zeros(len(shown), bool)], axis=1)  # the first open one
    closed = done | (shown.all(axis=1) & (rule != "infeasible"))
    return [None if closed[i] else why.format(j=j, g=best[i, j]) for i, j in enumerate(first)]


def chunk_size(net: Network) -> int:
    """How many regions to stack at once (work arrays of about a megabyte stay in cache)."""
    wide = max([net.input_size] + [layer.size for layer in net.layers])
    return max(1, 100_000 // (2 * wide * wide))


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
