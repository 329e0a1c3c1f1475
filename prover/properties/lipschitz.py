"""``Lipschitz(bound, norm)``: ``||f(x) - f(y)|| <= bound ||x - y||`` over the region.

Proof: interval bounds ``[L, U]`` on the (generalized) Jacobian over the region
(:mod:`prover.properties.jacobian`); with ``M = max(|L|, |U|)`` the certified constant is
``max_j sum_k M_jk`` for the infinity norm (``max_k sum_j M_jk`` for ``norm="1"``,
``min(||M||_F, sqrt(||M||_1 ||M||_inf))`` for ``norm="2"``), rounded up. It is carried in
``Result.value``; HOLDS when it is ``<= bound``.

Refutation: a pair of points of the region whose output difference ratio exceeds the
bound, on ONNX Runtime (float32, both points replayed) and on our float64 semantics.
The pair is found along the steepest direction of the local Jacobian (autograd) at the
best of random points, with a few step sizes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from prover import semantics
from prover.errors import PropertyError
from prover.ir.graph import Graph
from prover.options import Options
from prover.properties.common import (
    Pair,
    WholeModelProperty,
    fit_region,
    outputs64,
    random_points,
    refute_by_pairs,
)
from prover.properties.jacobian import jacobian_result, region_jacobian
from prover.result import REAL_ARITHMETIC_WITH_ROUNDING, Result, Verdict
from prover.spec.regions import Box

log = logging.getLogger(__name__)

NORMS = ("inf", "1", "2")
STEPS = (0.5, 0.1, 0.01, 0.001)
#: Points whose local Jacobian is computed during the pair search.
JACOBIAN_POINTS = 32


def norm_of(v: np.ndarray, norm: str) -> float:
    """The vector norm named ``norm`` ("inf", "1", "2") of a flattened array."""
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return float(
        {
            "inf": np.max(np.abs(v), initial=0.0),
            "1": np.sum(np.abs(v)),
            "2": np.sqrt(np.sum(v * v)),
        }[norm]
    )


def local_jacobians(graph: Graph, points: np.ndarray) -> np.ndarray:
    """Jacobians ``(B, m, n)`` of the float64 semantics at ``points`` (autograd)."""
    x = torch.as_tensor(points, dtype=torch.float64).reshape((-1,) + tuple(graph.input_shape))
    x = x.clone().requires_grad_(True)
    y = semantics.run(graph, x).reshape(x.shape[0], -1)
    rows = []
    for j in range(y.shape[1]):
        (grad,) = torch.autograd.grad(y[:, j].sum(), x, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(x) if grad is None else grad)
    return torch.stack(rows, dim=1).reshape(x.shape[0], y.shape[1], -1).detach().numpy()


def _direction(J: np.ndarray, norm: str) -> np.ndarray:
    """A unit-infinity-norm direction ``d`` that makes ``||J d|| / ||d||`` large."""
    if norm == "inf":
        row = int(np.argmax(np.abs(J).sum(axis=1)))
        return np.sign(J[row])
    if norm == "1":
        d = np.zeros(J.shape[1])
        d[int(np.argmax(np.abs(J).sum(axis=0)))] = 1.0
        return d
    _, _, vt = np.linalg.svd(J)
    v = vt[0]
    return v / max(np.max(np.abs(v)), 1e-300)


def pair_ratio(ya: np.ndarray, yb: np.ndarray, a: np.ndarray, b: np.ndarray, norm: str) -> float:
    """``||yb - ya|| / ||b - a||`` (0 when the points coincide)."""
    dx = norm_of(np.asarray(b) - np.asarray(a), norm)
    return 0.0 if dx == 0 else norm_of(np.asarray(yb) - np.asarray(ya), norm) / dx


def candidate_pairs(graph: Graph, box: Box, norm: str, options: Options):
    """Pairs ``(a, b)`` of ``box`` ranked by their float64 ratio (largest first)."""
    generator = torch.Generator().manual_seed(options.seed)
    points = random_points(box, JACOBIAN_POINTS, generator)
    jacobians = local_jacobians(graph, points)
    lower, upper = box.lower.reshape(-1), box.upper.reshape(-1)
    width = upper - lower
    pairs = []
    for x, J in zip(points.reshape(len(points), -1), jacobians, strict=True):
        if not np.all(np.isfinite(J)):
            continue
        d = np.where(width > 0, _direction(J, norm), 0.0)
        if not np.any(d):
            continue
        half = float(np.min(width[d != 0])) / 2
        for h in STEPS:
            delta = h * half
            c = np.clip(x, lower + delta * np.abs(d), upper - delta * np.abs(d))
            pairs.append((c - delta * d, c + delta * d))
    if not pairs:
        return []
    a = np.stack([p[0] for p in pairs])
    b = np.stack([p[1] for p in pairs])
    ya, yb = outputs64(graph, a), outputs64(graph, b)
    ratios = [pair_ratio(ya[i], yb[i], a[i], b[i], norm) for i in range(len(pairs))]
    order = np.argsort(ratios)[::-1]
    return [(a[i].reshape(box.shape), b[i].reshape(box.shape), ratios[i]) for i in order]


@dataclass(frozen=True, eq=False)
class Lipschitz(WholeModelProperty):
    """The outputs are ``bound``-Lipschitz in the given norm ("inf", "1" or "2") over the
    region: ``||f(x) - f(y)||_p <= bound ||x - y||_p`` (the same norm on both sides)."""

    bound: float
    norm: str = "inf"

    def __post_init__(self) -> None:
        try:
            value = float(self.bound)
        except (TypeError, ValueError):
            raise PropertyError(f"Lipschitz bound must be a number, got {self.bound!r}") from None
        if not (math.isfinite(value) and value >= 0):
            raise PropertyError(f"Lipschitz bound must be finite and >= 0, got {self.bound!r}")
        object.__setattr__(self, "bound", value)
        norm = str(self.norm).lower().lstrip("l")
        if norm in ("infinity", "oo"):
            norm = "inf"
        if norm not in NORMS:
            raise PropertyError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        object.__setattr__(self, "norm", norm)

    def describe(self) -> str:
        return f"lipschitz: constant <= {self.bound:g} in the {self.norm}-norm"

    def prove_on(self, graph: Graph, region: object, options: Options) -> Result:
        """Certify a Lipschitz constant over ``region`` (None: all of R^n)."""
        box = fit_region(graph, region)
        where = "the region" if box is not None else "all of R^n"
        soundness = (
            f"{REAL_ARITHMETIC_WITH_ROUNDING}; Lipschitz constant over {where} from interval "
            "bounds of the generalized Jacobian (Clarke's chain rule, Lebourg's mean value "
            "theorem)"
        )
        bounds, note = region_jacobian(graph, box, options)
        certified = math.inf if bounds is None else bounds.lipschitz(self.norm)
        stats = {"certified": certified}
        if certified <= self.bound:
            reason = f"certified Lipschitz constant {certified:.6g} <= {self.bound:g}"
            return jacobian_result(True, certified, soundness, reason, stats)
        found = self._refute(graph, box, options) if options.falsify else None
        if found is not None:
            pair, ratio_ort, ratio_ours = found
            return Result(
                Verdict.VIOLATED,
                counterexample=pair.a,
                output=pair.ort_a,
                method="search",
                value=certified,
                soundness="float32 execution on ONNX Runtime, confirmed in "
                "float64 (both points replayed)",
                reason=f"points a, b with ||f(b) - f(a)|| / ||b - a|| = {ratio_ort:.6g} > "
                f"{self.bound:g} ({self.norm}-norm)",
                stats=dict(stats, pair=(pair.a, pair.b), ratio=ratio_ort, ratio_ours=ratio_ours),
            )
        reason = note or (
            f"certified Lipschitz constant {certified:.6g} exceeds {self.bound:g} and no "
            "pair of points shows a larger ratio"
        )
        return jacobian_result(False, certified, soundness, reason, stats)

    def _refute(self, graph: Graph, box: Box | None, options: Options):
        def candidates(sbox: Box):
            ranked = candidate_pairs(graph, sbox, self.norm, options)
            return [(a, b, ratio <= self.bound) for a, b, ratio in ranked]

        def confirm(pair: Pair):
            ratio_ort = pair_ratio(pair.ort_a, pair.ort_b, pair.a, pair.b, self.norm)
            ratio_ours = pair_ratio(pair.ours_a, pair.ours_b, pair.a, pair.b, self.norm)
            if ratio_ort > self.bound and ratio_ours > self.bound:
                return pair, ratio_ort, ratio_ours
            return None

        return refute_by_pairs(graph, box, options, candidates, confirm)
