"""Exact decision of a branch-and-bound leaf whose ReLUs are all fixed, by linear programs.

When every ReLU of a leaf is split or stable, the network is affine on the leaf's region
``R = box ∩ {s_j z_j(x) >= 0}`` (``z_j`` the split pre-activations, ``s_j`` their signs),
so an unsafe polytope ``C_p y <= d_p`` is reachable iff a linear program is feasible. The
affine maps of ``z_j`` and of ``C y`` on the leaf come from the linear domain itself
(:class:`domains.linear.engine.Analysis`; with every neuron fixed or stable its
relaxation is exact up to the recorded float error). Per polytope we solve the phase-one
LP ``max t s.t. x in box, s_j z_j(x) >= t w_j, d_i - C_i y(x) >= t w_i`` (``w`` row
scales; ``t <= 1``), always feasible and bounded, so HiGHS returns dual multipliers:

* ``t* >= 0``: the LP's point is a *candidate*; only the search's replay may call it a
  counterexample.
* ``t* < 0``: the duals give ``mu >= 0`` (rows) and ``beta >= 0`` (splits) with
  ``mu (C y - d) - beta s z >= -t* > 0`` on the box. For a row ``i`` with ``mu_i > 0``
  the multipliers ``beta / mu_i`` are beta-CROWN multipliers proving ``C_i y > d_i`` on
  R; when ``mu`` vanishes (R empty: a Farkas ray), ``K beta`` does for K large enough.

The float LP is never trusted: the multipliers are handed to
``domains.linear.api.linear_bounds(..., splits=..., betas=...)``, whose bound is sound for
*any* non-negative multipliers, and a leaf closes only when that rigorous bound excludes
every polytope by one row (or the domain shows the region empty). Anything else leaves
the leaf open (the caller falls back to input splitting).

Solver: ``scipy.optimize.linprog(method="highs")`` (scipy is a dependency): it calls
HiGHS directly with dense data and returns the duals as ``ineqlin.marginals``, without
cvxpy's problem-compilation overhead per leaf.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import optimize

from prover.engine.leaves import Rows, close_mask
from prover.engine.proof import Closed
from prover.ir.graph import Graph

log = logging.getLogger(__name__)

#: coefficient elements per chunk of leaves (affine maps are ``(B, neurons, n_in)``)
CHUNK_ELEMENTS = 2**23
#: below this share of the dual mass, a row's multiplier counts as zero (Farkas ray)
MU_TINY = 1e-7


@dataclass
class LeafDecision:
    """What the LPs decided for a batch of leaves.

    Attributes:
        closed: per leaf, the :class:`Closed` leaf (rule "linear" with rows, slopes and
            betas as evidence, or "infeasible"), or None when it stays open.
        points: ``(k, n_in)`` candidate inputs (LP points in an unsafe polytope; to replay).
        lps: number of LPs solved.
    """

    closed: list[Closed | None]
    points: torch.Tensor
    lps: int = 0


def _phase_one(G: np.ndarray, e: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """``max t`` s.t. ``(G x + e) / w >= t``, ``lo <= x <= hi``, ``t <= 1``.

    Returns ``(t*, x*, nu)`` with ``nu = lambda / w >= 0`` the multipliers of the
    unscaled constraints ``G x + e >= 0`` (``sum nu (G x + e) <= t*`` on the box), or None
    when the solver fails.
    """
    w = np.abs(G).sum(axis=1) + np.abs(e)
    w = np.where(w > 0, w, 1.0)
    n = G.shape[1]
    A = np.hstack([-G / w[:, None], np.ones((G.shape[0], 1))])
    b = e / w
    cost = np.zeros(n + 1)
    cost[-1] = -1.0
    bounds = [(float(a), float(c)) for a, c in zip(lo, hi, strict=True)] + [(None, 1.0)]
    if not (np.isfinite(A).all() and np.isfinite(b).all()):
        return None  # linprog refuses NaN or Inf: the leaf stays open
    res = optimize.linprog(cost, A_ub=A, b_ub=b, bounds=bounds, method="highs")
    if res.status != 0 or res.x is None or getattr(res, "ineqlin", None) is None:
        return None
    lam = np.clip(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0, None)
    return float(res.x[-1]), np.asarray(res.x[:-1]), lam / w


def _maps(analysis, graph: Graph, names: list[str], C: torch.Tensor):
    """Affine maps on each leaf: ``{name: (G (B, n, n_in), h (B, n))}`` and ``(CW, Cb)``."""
    out = {}
    for name in names:
        shape = analysis.shape(name)
        n = math.prod(shape)
        if name == graph.input_name:
            eye = torch.eye(n, dtype=torch.float64).expand(analysis.batch, n, n)
            out[name] = (eye, torch.zeros(analysis.batch, n, dtype=torch.float64))
            continue
        lam = torch.eye(n, dtype=torch.float64).reshape(1, n, *shape)
        _, A, c = analysis.lower_bound(name, lam, coefficients=True)
        out[name] = (A, c)
    lam = C.reshape(1, C.shape[0], *graph.output_shape)
    _, A, c = analysis.lower_bound(graph.output, lam, coefficients=True)
    return out, (A, c)


def _exclusion(G, e, CW, Cb, d, lo, hi, span, lps):
    """For one polytope: ``("point", x)``, ``("row", i, beta)`` or None (undecided)."""
    start, end = span
    rows = list(range(start, end))
    joint = _phase_one(np.vstack([G, -CW[rows]]), np.concatenate([e, d[rows] - Cb[rows]]), lo, hi)
    lps[0] += 1
    if joint is None:
        return None
    t, x, nu = joint
    if t >= 0:
        return ("point", np.clip(x, lo, hi))
    k = G.shape[0]
    mu = nu[k:]
    order = [rows[j] for j in np.argsort(-mu, kind="stable")]
    for i in order:
        if i == order[0] and (len(rows) == 1 or mu.max() >= (1 - 1e-9) * mu.sum()):
            single = (t, x, np.concatenate([nu[:k], [mu.max()]]))
        else:
            single = _phase_one(np.vstack([G, -CW[[i]]]), np.append(e, d[i] - Cb[i]), lo, hi)
            lps[0] += 1
        if single is None or single[0] >= 0:
            continue
        ti, _, nui = single
        beta, m = nui[:k], nui[k]
        if m > MU_TINY * (m + beta.sum()):
            return ("row", i, beta / m)
        # Farkas ray: beta s z <= t < 0 on the box; scale it past the plain bound's gap.
        plain = float((np.minimum(CW[i] * lo, CW[i] * hi)).sum() + Cb[i])
        scale = 2.0 * (max(d[i] - plain, 0.0) + 1.0) / max(-ti, 1e-300)
        return ("row", i, beta * scale)
    return None


def decide_leaves(
    graph: Graph,
    lower: torch.Tensor,
    upper: torch.Tensor,
    splits: dict[str, torch.Tensor],
    rows: Rows,
    intermediate: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    deadline: float | None = None,
) -> LeafDecision | None:
    """Decide leaves whose ReLUs are all split or stable (see the module docstring).

    Args:
        graph: the network.
        lower, upper: ``(B, n_in)`` flat input boxes of the leaves.
        splits: ReLU input name -> int8 ``(B, n)`` phases (-1, 0, +1).
        rows: the stacked unsafe polytopes.
        intermediate: pre-activation bounds known to hold on each leaf (intersected).
        deadline: a :func:`time.monotonic` value after which no further LP is started
            (the remaining leaves stay open).

    Returns:
        A :class:`LeafDecision`, or None when the linear domain or an LP solver is missing.
        Leaves with an unstable unsplit neuron (by the domain's own bounds) stay open.
    """
    try:
        engine = importlib.import_module("domains.linear.engine")
        api = importlib.import_module("domains.linear.api")
    except ImportError:
        return None
    names = list(splits)
    lower, upper = lower.to(torch.float64), upper.to(torch.float64)
    B, n_in = lower.shape
    per_leaf = max(1, (sum(splits[k].shape[1] for k in names) + rows.C.shape[0]) * n_in)
    size = max(1, CHUNK_ELEMENTS // per_leaf)
    closed: list[Closed | None] = []
    points: list[np.ndarray] = []
    lps = [0]
    for s in range(0, B, size):
        part = slice(s, min(B, s + size))
        sub = {k: v[part] for k, v in splits.items()}
        inter = {k: (a[part], b[part]) for k, (a, b) in (intermediate or {}).items()}
        box = (lower[part], upper[part])
        got, pts = _decide_chunk(engine, api, graph, box, sub, rows, inter, lps, deadline)
        closed += got
        points += pts
    shape = (len(points), n_in)
    stacked = torch.from_numpy(np.array(points, dtype=np.float64).reshape(shape))
    return LeafDecision(closed, stacked, lps[0])


def _decide_chunk(engine, api, graph, box, splits, rows, intermediate, lps, deadline):
    lower, upper = box
    B = lower.shape[0]
    shape = tuple(graph.input_shape)
    lo_t, hi_t = lower.reshape(B, *shape), upper.reshape(B, *shape)
    names = list(splits)
    analysis = engine.Analysis(graph, lo_t, hi_t, splits=splits, intermediate=intermediate)
    eligible = ~(analysis.infeasible | analysis.nonfinite)
    for name in names:
        lb, ub = (t.expand(B, *t.shape[1:]).reshape(B, -1) for t in analysis.box(name))
        eligible &= ~((lb < 0) & (ub > 0) & (splits[name] == 0)).any(dim=1)
    maps, (CW, Cb) = _maps(analysis, graph, names, rows.C)
    d = rows.d.numpy()
    m = rows.C.shape[0]
    betas = {k: torch.zeros(B, m, splits[k].shape[1], dtype=torch.float64) for k in names}
    # regions the domain already shows empty: the rigorous call below reports them
    decided = (analysis.infeasible & ~analysis.nonfinite).clone()
    points = []
    for b in torch.nonzero(eligible).flatten().tolist():
        if deadline is not None and time.monotonic() > deadline:
            break
        lo, hi = lower[b].numpy(), upper[b].numpy()
        Gs, es, where = [], [], []
        for k in names:
            sign = splits[k][b].to(torch.float64)
            idx = torch.nonzero(sign).flatten()
            G, h = maps[k]
            Gs.append((sign[idx, None] * G[b, idx]).numpy())
            es.append((sign[idx] * h[b, idx]).numpy())
            where += [(k, j) for j in idx.tolist()]
        G = np.vstack(Gs) if Gs else np.zeros((0, len(lo)))
        e = np.concatenate(es) if es else np.zeros(0)
        # constraints that hold on the whole box are left out (their multiplier is 0)
        needed = np.minimum(G * lo, G * hi).sum(axis=1) + e < 1e-9 * (1 + np.abs(e))
        where = [w for w, keep in zip(where, needed, strict=True) if keep]
        G, e = G[needed], e[needed]
        cw, cb = CW[b].numpy(), Cb[b].numpy()
        ok = True
        for span in rows.spans:
            found = _exclusion(G, e, cw, cb, d, lo, hi, span, lps)
            if found is None or found[0] == "point":
                if found is not None:
                    points.append(found[1])
                ok = False
                break
            _, i, beta = found
            for (k, j), value in zip(where, beta, strict=True):
                betas[k][b, i, j] = float(value)
        decided[b] = ok
    closed: list[Closed | None] = [None] * B
    index = torch.nonzero(decided).flatten()
    if not len(index):
        return closed, points
    result = api.linear_bounds(
        graph,
        lo_t[index],
        hi_t[index],
        rows.C,
        splits={k: v[index] for k, v in splits.items()},
        betas={k: v[index] for k, v in betas.items()},
        intermediate={k: (a[index], u[index]) for k, (a, u) in intermediate.items()},
    )
    excluded, row = close_mask(result.lower, rows)
    for j, b in enumerate(index.tolist()):
        if bool(result.infeasible[j]):
            closed[b] = Closed("infeasible", {}, "crown+lp")
        elif bool(excluded[j].all()):
            evidence = {
                "rows": row[j].tolist(),
                "slopes": {k: v[j].clone() for k, v in result.slopes.items()},
                "betas": {k: v[j].clone() for k, v in result.betas.items()},
            }
            closed[b] = Closed("linear", evidence, "crown+lp")
    return closed, points
