"""Numeric search for witnesses and counterexamples of a claim (proposals only).

:class:`NumpyBackend` evaluates a "truth degree" over a batch of points (positive where
the formula looks true, negative where it looks false). Candidates are ranked by it and
must be confirmed by :func:`prover.symbolic.numeric.verify`, which is rigorous.
"""

from __future__ import annotations

import math
import time

import numpy as np

from prover.symbolic.lower import Arithmetic, lower
from prover.symbolic.numeric import bounds, real_variables, split
from prover.symbolic.syntax import Claim


class NumpyBackend(Arithmetic):
    """Float64 batch evaluation of a truth degree (> 0 looks true, < 0 looks false)."""

    def __init__(self, batch: int) -> None:
        self.undefined = np.zeros(batch, dtype=bool)

    def const(self, value):
        return float(value)

    def div(self, a, b):
        self.undefined |= np.asarray(b) == 0
        return a / b

    def exp(self, a):
        return np.exp(a)

    def log(self, a):
        self.undefined |= np.asarray(a) <= 0
        return np.log(np.abs(a) + (np.asarray(a) == 0))

    def sqrt(self, a):
        self.undefined |= np.asarray(a) < 0
        return np.sqrt(np.abs(a))

    def pow(self, a, b, exponent):
        if exponent is not None and exponent.denominator == 1:
            if exponent < 0:
                self.undefined |= np.asarray(a) == 0
            return np.power(a, float(exponent))
        self.undefined |= np.asarray(a) <= 0
        return np.power(np.abs(a), b)

    def sigmoid(self, a):
        return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(a)))

    def tanh(self, a):
        return np.tanh(a)

    def relu(self, a):
        return np.maximum(a, 0.0)

    def abs(self, a):
        return np.abs(a)

    def max2(self, a, b):
        return np.maximum(a, b)

    def min2(self, a, b):
        return np.minimum(a, b)

    def leaky(self, a, slope):
        return np.where(np.asarray(a) >= 0, a, slope * np.asarray(a))

    def total(self, items):
        return np.sum(np.stack(np.broadcast_arrays(*items)), axis=0)

    def cmp(self, op, a, b):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        tol = 1e-9 * (1.0 + np.abs(a) + np.abs(b))
        gap = b - a
        return {
            "==": tol - np.abs(gap),
            "!=": np.abs(gap) - tol,
            "<": gap - tol,
            "<=": gap + tol,
            ">": -gap - tol,
            ">=": -gap + tol,
        }[op]

    def and_(self, parts):
        return np.min(np.stack(np.broadcast_arrays(*parts)), axis=0)

    def or_(self, parts):
        return np.max(np.stack(np.broadcast_arrays(*parts)), axis=0)

    def not_(self, p):
        return -p

    def implies(self, p, q):
        return np.maximum(-p, q)


def _score(claim, variables, points: np.ndarray, want: bool) -> np.ndarray:
    """Objective to minimise: small where the matrix looks ``want`` (True/False)."""
    backend = NumpyBackend(points.shape[0])
    with np.errstate(all="ignore"):
        columns = [points[:, k] for k in range(points.shape[1])]
        degree = np.asarray(lower(claim, backend, split(variables, columns)), dtype=float)
        degree = np.broadcast_to(degree, (points.shape[0],)).copy()
        degree[backend.undefined] = -np.inf
        objective = -degree if want else degree
        objective[np.isnan(objective)] = np.inf
    return objective


def _samples(rng, lo, hi, batch: int, round_: int) -> np.ndarray:
    dim = lo.shape[0]
    scale = [1.0, 0.1, 3.0, 10.0, 30.0, 100.0][round_ % 6]
    pts = rng.normal(0.0, scale, size=(batch, dim))
    if round_ % 3 == 1:
        pts = np.round(pts * 2) / 2  # small integers and halves: exact witnesses
    box = np.isfinite(lo)
    if box.any():
        uniform = lo + (hi - lo) * rng.random((batch, dim))
        pts[:, box] = uniform[:, box]
        if round_ % 3 == 2:
            pts[:, box] = np.where(rng.random((batch, dim)) < 0.5, lo, hi)[:, box]
    if round_ == 0:
        pts[0] = 0.0
        pts[1] = 1.0
        pts[2] = -1.0
        pts[3] = np.where(box, lo, 0.0)
        pts[4] = np.where(box, hi, 0.0)
        with np.errstate(all="ignore"):
            pts[5] = np.where(box, (lo + hi) / 2, 2.0)
    return np.clip(pts, lo, hi)


def search(claim: Claim, want: bool, deadline: float, seed: int = 0) -> list[np.ndarray]:
    """Look for points where the matrix looks ``want``; return candidates, best first.

    Random sampling at several scales (and box corners), then Nelder-Mead polishing for
    small dimensions. The candidates prove nothing: :func:`evaluate3` decides.
    """
    variables = real_variables(claim)
    lo, hi = bounds(variables)
    dim = lo.shape[0]
    rng = np.random.default_rng(seed)
    batch = 256 if dim <= 100 else 32
    found: list[tuple[float, np.ndarray]] = []
    for round_ in range(12):
        if time.monotonic() > deadline and round_ >= 1:
            break
        pts = _samples(rng, lo, hi, batch, round_)
        obj = _score(claim, variables, pts, want)
        order = np.argsort(obj)[:4]
        found += [(float(obj[k]), pts[k]) for k in order if obj[k] < 0]
        if len(found) >= 8:
            break
    if not found and dim <= 12 and time.monotonic() < deadline:
        from scipy.optimize import minimize

        pts = _samples(rng, lo, hi, batch, 0)
        obj = _score(claim, variables, pts, want)
        for k in np.argsort(obj)[:3]:
            if time.monotonic() > deadline:
                break
            fun = lambda z: float(_score(claim, variables, np.clip(z, lo, hi)[None], want)[0])
            res = minimize(fun, pts[k], method="Nelder-Mead", options={"maxfev": 100 * dim})
            z = np.clip(res.x, lo, hi)
            if math.isfinite(res.fun) and fun(z) < 0:
                found.append((fun(z), z))
    found.sort(key=lambda item: item[0])
    return [z for _, z in found[:8]]
