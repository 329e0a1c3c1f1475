"""The leaf rules: interval and linear (back-substitution) bounds, exact outputs.

A region is an input box plus ReLU split constraints ``phases[(k, j)]``: -1 (the
pre-activation of neuron j of ReLU layer k is <= 0), +1 (>= 0) or 2 (both). ``bounds[p]``
bounds the value entering layer p (the last: the output) rigorously (see :mod:`arith`).
Regions are processed in stacks (a leading batch axis), each independently."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from proofs.checker import arith
from proofs.checker.model import Network


class NotProved(Exception):
    """A rule did not prove its leaf; the message says why."""


EMPTY = "empty"  # what :func:`check_group` gives for a split node shown empty
WHY = {
    "infeasible": "the leaf's region is not shown empty",
    "interval": "unsafe polytope {j} not excluded by interval bounds",
    "linear": "unsafe polytope {j}: best linear lower bound minus d is {g:.3g}, not positive",
}


def _consts(layer) -> dict:
    """Constants derived once from an affine layer's weights: ``|W|`` and ``[W+, W-, b]``."""
    if "ibp" not in layer.cache:
        W, b = layer.W, layer.b[:, None]
        layer.cache.update(absW=np.abs(W), ibp=np.hstack([np.maximum(W, 0), np.minimum(W, 0), b]))
    return layer.cache


def _relaxation(lower, upper, alpha):
    """The ReLU bounds used in back-substitution, over pre-activation bounds ``[l, u]``.

    Soundness: for ``z`` in ``[l, u]``, ``relu(z) >= alpha z`` for any alpha in [0, 1]; for
    ``l < 0 < u``, ``relu(z) <= a z + t`` whenever ``a l + t >= 0`` and ``a u + t >= u``
    (relu is convex: a line above it at both ends is above it in between); ``t = max(-a l,
    u - a u)`` rounded upwards makes the line valid whatever float ``a`` is. Neurons with
    ``u <= 0`` output 0, with ``l >= 0`` their input. NaN in ``alpha`` (or None): adaptive.

    Returns ``(U, live, d, d_pos, d_neg, t, at)``: the neurons unstable in some region,
    those not inactive in all, the live ones' slopes (exactly 0 or 1 where stable), the
    unstable ones' lower and upper slopes and ``t``, and their positions in ``live``.
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
    size = lower.shape[-1]
    U = np.flatnonzero(unstable.reshape(-1, size).any(axis=0))
    live = np.flatnonzero((~inactive).reshape(-1, size).any(axis=0))
    pick = (d_pos[..., None, live], d_pos[..., None, U], d_neg[..., None, U], t[..., U])
    return (U, live, *pick, np.searchsorted(live, U))


def backsubstitute(net: Network, Lam, stop: int, bounds, relax, c=None) -> np.ndarray:
    """Rigorous lower bounds of ``Lam @ v + c`` where v is the value leaving layer ``stop - 1``.

    ``bounds`` hold one region (vectors) or a stack of regions (a leading batch axis);
    ``Lam`` is one matrix for all or one per region.

    Soundness: the invariant is ``target >= Lam v_q + c`` over the leaf region, for the exact
    (float-valued) entries of Lam and c. Through a linear layer the exact product ``Lam W``
    differs from the stored float product by E with ``|E| <= gamma_n |Lam| |W| + n eta``
    (Higham 3.5), so ``Lam W v >= fl(Lam W) v - |E| |v|`` with ``|v| <= mz = max(|l|, |u|)``;
    ``|E| mz <= gamma_n |Lam| (|W| mz) + n eta sum(mz)``, whose float value (two products of
    nonnegative terms, relative error below 2 gamma) is doubled and rounded up; the slack
    goes into c, rounded down. Through a ReLU (:func:`_relaxation`) column j of Lam is
    multiplied by the lower slope where ``Lam >= 0``, else by the upper one, and c gains
    ``min(Lam, 0) t``. Stable neurons have slopes 0 or 1 and t = 0: exact products, no slack
    (columns 0 in every region are dropped, with the matching rows of the next W). Elsewhere
    ``|fl(Lam d) - Lam d| <= gamma_1 |fl(Lam d)| + eta``, bounded by the doubled gamma_1 term
    plus ``4 eta (sum mz + 1)``. At the input, ``min over the box of Lam x + c`` is taken
    coordinate-wise, rounded down. Stacked regions are independent, with the same guarantee.
    """
    batch = bounds[0][0].shape[:-1]
    Lam = np.broadcast_to(Lam, batch + Lam.shape[-2:])
    c = np.zeros(Lam.shape[:-1]) if c is None else np.broadcast_to(c, Lam.shape[:-1])
    cols = slice(None)  # Lam's columns are these entries of the value leaving layer q
    gamma1 = 2.0 * arith.gamma(1) * (1.0 + 2.0**-20)
    with np.errstate(over="ignore", invalid="ignore"):
        for q in range(stop - 1, -1, -1):
            layer = net.layers[q]
            lo, hi = bounds[q]
            if layer.kind == "add":
                b1 = np.concatenate([layer.b[cols], [1.0]])
                c = arith.matvec_lower(np.concatenate([Lam, c[..., None]], axis=-1), b1)
            elif layer.kind == "affine":
                # c += Lam b, and sum_j |fl(Lam W) - Lam W|_rj mz_j <= gamma_n (|Lam| (|W| mz))_r
                # + n eta |mz|_1, evaluated as a matrix-vector chain (nonnegative terms;
                # slack factor 2); |Lam| |b| and |Lam| (|W| mz) are one product
                W, b, (n, m) = layer.W[cols], layer.b[cols], (layer.W.shape[1], Lam.shape[-1])
                mz = np.maximum(np.abs(lo), np.abs(hi))
                total = np.sum(mz, axis=-1, keepdims=True) + 1.0
                right = np.broadcast_to(np.abs(b), mz.shape[:-1] + (m,))
                right = np.stack([arith.dot(_consts(layer)["absW"][cols], mz), right], axis=-1)
                both = np.abs(Lam) @ right
                c = arith.down(c + arith.lower_from(arith.dot(Lam, b), both[..., 1], m))
                err = arith.up(both[..., 0] * (2.0 * arith.gamma(n) * (1.0 + 2.0**-20)))
                c = arith.down(c - arith.up(err + 3.0 * (n + m) * arith.ETA * total))
                Lam, cols = Lam @ W, slice(None)
            else:
                # T t and |rounded| mz have terms of one sign, so S = |P| in lower_from; the
                # eta part (4 eta fl(sum mz) >= 3 eta sum mz) keeps subnormals out of products
                if layer.kind == "scale":
                    mz = np.maximum(np.abs(lo[..., cols]), np.abs(hi[..., cols]))
                    Lam = rounded = Lam * layer.b[cols]
                else:
                    if not isinstance(cols, slice):  # rare: no affine layer between ReLUs
                        full = np.zeros(Lam.shape[:-1] + (layer.size,))
                        full[..., cols] = Lam
                        Lam = full
                    U, cols, d, d_pos, d_neg, t, at = relax[q]
                    sub, mz = Lam[..., U], np.maximum(np.abs(lo[..., U]), np.abs(hi[..., U]))
                    neg = arith.dot(np.minimum(sub, 0.0), t)
                    c = arith.down(c + arith.lower_from(neg, -neg, U.size))
                    rounded = np.where(sub >= 0, sub * d_pos, sub * d_neg)
                    Lam = Lam[..., cols] * d
                    Lam[..., at] = rounded
                pos = arith.dot(np.abs(rounded), mz)
                slack = arith.up(gamma1 * -arith.lower_from(-pos, pos, mz.shape[-1]))
                total = np.sum(mz, axis=-1, keepdims=True) + 1.0
                c = arith.down(c - arith.up(slack + arith.up(4.0 * arith.ETA * total)))
            if not arith.finite(c):  # a non-finite Lam makes the next c non-finite
                raise NotProved("non-finite value in back-substitution")
        lo, hi = bounds[0][0][..., cols], bounds[0][1][..., cols]
        one = np.ones(lo.shape[:-1] + (1,))
        A = np.concatenate([np.maximum(Lam, 0.0), np.minimum(Lam, 0.0), c[..., None]], axis=-1)
        result = arith.matvec_lower(A, np.concatenate([lo, hi, one], axis=-1))
    if not arith.finite(result, Lam):
        raise NotProved("non-finite linear bound")
    return result


def region_bounds(net: Network, lower, upper, phases, slopes, linear, inherited=None):
    """Bounds of every value over a region (or a stack): ``(bounds, relax, empty)``.

    With ``linear`` the pre-activation bounds of every ReLU layer are the intersection of
    interval propagation and back-substitution (with ``slopes``: ReLU ordinal -> alphas,
    NaN or absent meaning adaptive) and ``inherited`` (ordinal -> [lo, hi], valid on a
    region containing this one), then clamped by the split constraints (``phases``: a dict,
    or a list for a stack). When every region is shown empty the lists stop there.
    """
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    items = [phases] if isinstance(phases, dict) else phases
    clamps: dict = {}  # ReLU ordinal -> masks (2, regions, m) of the constraints z <= 0, z >= 0
    for i, item in enumerate(items):
        for (k, j), phase in item.items():
            shape = (2, len(items), net.layers[net.relu_layers[k]].size)
            mask = clamps.setdefault(k, np.zeros(shape, bool))
            mask[:, i, j] |= (phase in (-1, 2), phase in (1, 2))  # 2: both, z = 0
    bounds, relax, ordinal = [(lower, upper)], {}, 0
    empty = np.zeros(lower.shape[:-1], bool)
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
                lo = np.maximum(lo, inherited[ordinal][..., 0, :])
                hi = np.minimum(hi, inherited[ordinal][..., 1, :])
            if linear:  # neurons inactive in every region of the stack and not split: their
                m = lo.shape[-1]  # bounds are never used (output 0), so no back-substitution
                rows = (hi > 0).reshape(-1, m).any(axis=0)
                if ordinal in clamps:
                    rows |= clamps[ordinal].reshape(-1, m).any(axis=0)
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
                off, on = clamps[ordinal].reshape((2,) + lo.shape)
                hi = np.where(off, np.minimum(hi, 0.0), hi)
                lo = np.where(on, np.maximum(lo, 0.0), lo)
            empty = empty | np.any(lo > hi, axis=-1)
            if np.all(empty):
                return bounds, relax, empty
        bounds.append((lo, hi))
    return bounds, relax, empty


def _stack(net: Network, items: list, slopes: bool) -> dict | None:
    """Stack per-region dicts ReLU ordinal -> slopes (absent: NaN, adaptive) or -> (lo, hi)
    (absent: unbounded) into arrays (B, m) or (B, 2, m); None when every item is None."""
    if all(item is None for item in items):
        return None
    out = {}
    for k, p in enumerate(net.relu_layers):
        m = net.layers[p].size
        none = np.full(m, np.nan) if slopes else np.array([[-np.inf] * m, [np.inf] * m])
        out[k] = np.stack([np.asarray(it[k]) if it and k in it else none for it in items])
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


def check_group(net: Network, stack: tuple, rule: str, everywhere: bool, polytopes) -> list:
    """Check a stack of leaves sharing rule and slope mode, and bound split nodes.

    ``stack`` is ``(lower, upper, phases, inherited, slopes, split)``. A split node gets its
    adaptive linear pre-activation bounds for its children (ReLU ordinal -> (lo, hi)), or
    :data:`EMPTY`. A leaf gets None (closed) or why not: intermediate bounds with the
    adaptive slopes, then for leaves still open with the given ones (only those when
    ``everywhere``); rows are tried with the interval test and back-substitution with the
    given and the adaptive final slopes. Each is sound, so any success excludes a polytope.
    """
    lower, upper, phases, inherited, slopes, split = stack
    given, stacked = _stack(net, slopes, True), _stack(net, inherited, False)
    split, out = np.array(split, bool), [None] * len(phases)
    shown = np.zeros((len(phases), len(polytopes)), bool)
    best, done = np.full(shown.shape, -np.inf), split.copy()
    todo = np.arange(len(phases))
    for inner in [given] if everywhere else [None] + ([given] if given else []):
        if not todo.size:
            break
        pick = {k: v[todo] for k, v in stacked.items()} if stacked else None
        regions = (lower[todo], upper[todo], [phases[i] for i in todo])
        inner = {k: v[todo] for k, v in inner.items()} if inner else None
        bounds, relax, empty = region_bounds(net, *regions, inner, rule != "interval", pick)
        for i in np.flatnonzero(split[todo]):
            pairs = ((k, bounds[p]) for k, p in enumerate(net.relu_layers))
            out[todo[i]] = EMPTY if empty[i] else {k: (lo[i], hi[i]) for k, (lo, hi) in pairs}
        done[todo] |= empty
        if done[todo].all() or rule == "infeasible":
            todo = todo[~done[todo]]
            continue
        finals = [relax]
        if given is not None and inner is None:  # the given final slopes
            pairs = enumerate(net.relu_layers)
            finals.append({p: _relaxation(*bounds[p], given[k][todo]) for k, p in pairs})
        box = np.concatenate(bounds[-1], axis=-1)
        for index, (C, d) in enumerate(polytopes):  # rows the output box alone excludes
            low = arith.matvec_lower(np.hstack([np.maximum(C, 0.0), np.minimum(C, 0.0)]), box)
            shown[todo, index] |= (np.isfinite(low) & (low > d)).any(axis=-1)
            for final in finals if rule == "linear" else []:
                if not (shown[todo, index] | done[todo]).all():
                    gap = backsubstitute(net, C, len(net.layers), bounds, final) - d
                    gap = gap.max(axis=-1, initial=-np.inf)
                    best[todo, index] = np.maximum(best[todo, index], gap)
                    shown[todo, index] |= gap > 0
        todo = todo[~(done | shown.all(axis=1))[todo]]
    first = np.argmin(np.c_[shown, np.zeros(len(shown), bool)], axis=1)  # the first open one
    closed = done | (shown.all(axis=1) & (rule != "infeasible"))
    for i in np.flatnonzero(~closed):
        out[i] = WHY[rule].format(j=first[i], g=best[i, first[i]])
    return out


def exact_output(net: Network, x: np.ndarray) -> list[Fraction]:
    """The exact real-arithmetic output at the float input ``x``, as Fractions (computed
    with dyadic numbers: Python integers over one exponent, see :func:`arith.to_dyadic`)."""
    v, e = arith.to_dyadic(np.asarray(x, dtype=np.float64).reshape(-1))
    for layer in net.layers:
        if layer.kind == "relu":
            v = np.array([i if i > 0 else 0 for i in v], dtype=object)
            continue
        if "exact" not in layer.cache:
            W = arith.to_dyadic(layer.W) if layer.kind == "affine" else None
            layer.cache["exact"] = (W, arith.to_dyadic(layer.b))
        W, (b, eb) = layer.cache["exact"]
        if layer.kind == "scale":
            v, e = v * b, e + eb
            continue
        if layer.kind == "affine":
            v, e = W[0].dot(v), W[1] + e
        low = min(e, eb)  # add b
        v, e = v * (1 << (e - low)) + b * (1 << (eb - low)), low
    return [Fraction(int(i)) * Fraction(2) ** e for i in v]
