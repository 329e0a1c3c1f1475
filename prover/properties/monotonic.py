"""``Monotonic(input=i, output=j, increasing=True)``: ``y_j`` never decreases as ``x_i``
grows (never increases, with ``increasing=False``) anywhere in the region.

Proof: the lower bound of ``dy_j/dx_i`` over the region (interval bounds of the
generalized Jacobian, :mod:`prover.properties.jacobian`) is ``>= 0`` (``<= 0`` upper
bound for decreasing). Why this is sound also at ReLU kinks: the network is locally
Lipschitz where the bounds are finite, and by Lebourg's mean value theorem
``y_j(x + t e_i) - y_j(x) = t g_i`` for some ``g`` in the generalized gradient of ``y_j``
at a point of the segment, which lies in the box; by Clarke's chain rule the generalized
gradient lies within the propagated interval bounds, so ``g_i >= 0`` there. (For
piecewise-linear continuous networks this is the familiar argument that the partial
derivative is ``>= 0`` almost everywhere along every segment, and the function is the
integral of it; the generalized-gradient form also covers segments lying on a kink.)
``Result.value`` is the certified bound of the partial derivative.

Refutation: points ``a`` and ``b = a + t e_i`` (``t > 0``) of the region with
``y_j(b) < y_j(a)`` (``>`` for decreasing) on ONNX Runtime (both replayed in float32) and
on our float64 semantics.
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
    finite_or,
    fit_region,
    outputs64,
    random_points,
    refute_by_pairs,
)
from prover.properties.jacobian import jacobian_result, region_jacobian
from prover.result import REAL_ARITHMETIC_WITH_ROUNDING, Result, Verdict
from prover.spec.regions import Box

log = logging.getLogger(__name__)

STEPS = (1.0, 0.5, 0.1, 0.01, 0.001)


def _check_index(value: object, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PropertyError(f"Monotonic {what} must be an integer index, got {value!r}")
    if not 0 <= int(value) < size:
        raise PropertyError(f"Monotonic {what} {value} does not exist: the model has {size}")
    return int(value)


@dataclass(frozen=True, eq=False)
class Monotonic(WholeModelProperty):
    """Output ``output`` is nondecreasing (or nonincreasing) in input ``input``.

    Indices are into the flattened input and output.
    """

    input: int
    output: int
    increasing: bool = True

    def describe(self) -> str:
        way = "nondecreasing" if self.increasing else "nonincreasing"
        return f"monotonic: output {self.output} is {way} in input {self.input}"

    def _breaks(self, before: float, after: float) -> bool:
        """Whether moving the input up from ``before``'s point to ``after``'s breaks it."""
        return after < before if self.increasing else after > before

    def prove_on(self, graph: Graph, region: object, options: Options) -> Result:
        """Prove monotonicity over ``region`` (None: all of R^n)."""
        i = _check_index(self.input, graph.input_size, "input")
        j = _check_index(self.output, graph.output_size, "output")
        box = fit_region(graph, region)
        where = "the region" if box is not None else "all of R^n"
        soundness = (
            f"{REAL_ARITHMETIC_WITH_ROUNDING}; over {where}, from interval bounds of the "
            "generalized Jacobian (Clarke's chain rule, Lebourg's mean value theorem)"
        )
        bounds, note = region_jacobian(graph, box, options)
        if bounds is None:
            lo, hi = -math.inf, math.inf
        else:
            lo, hi = float(bounds.lower[j, i]), float(bounds.upper[j, i])
        certified = lo if self.increasing else hi
        stats = {"derivative_bounds": (lo, hi)}
        if (self.increasing and lo >= 0) or (not self.increasing and hi <= 0):
            reason = f"d y[{j}] / d x[{i}] lies in [{lo:.6g}, {hi:.6g}] over {where}"
            return jacobian_result(True, certified, soundness, reason, stats)
        found = self._refute(graph, box, i, j, options) if options.falsify else None
        if found is not None:
            return Result(
                Verdict.VIOLATED,
                counterexample=found.a,
                output=found.ort_a,
                method="search",
                value=finite_or(certified, None),
                soundness="float32 execution on ONNX Runtime, confirmed in float64 (both "
                "points replayed)",
                reason=f"x[{i}] grows from {found.a.reshape(-1)[i]:.6g} to "
                f"{found.b.reshape(-1)[i]:.6g} and y[{j}] goes from "
                f"{found.ort_a[j]:.6g} to {found.ort_b[j]:.6g}",
                stats=dict(stats, pair=(found.a, found.b)),
            )
        reason = note or (
            f"d y[{j}] / d x[{i}] bounds [{lo:.6g}, {hi:.6g}] do not decide it "
            "and no breaking pair was found"
        )
        return jacobian_result(False, certified, soundness, reason, stats)

    def _pairs(self, graph: Graph, box: Box, i: int, j: int, options: Options):
        generator = torch.Generator().manual_seed(options.seed)
        points = random_points(box, max(options.random_samples, 1), generator)
        x = torch.as_tensor(points).requires_grad_(True)
        y = semantics.run(graph, x).reshape(x.shape[0], -1)[:, j]
        (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
        slope = np.zeros(len(points)) if grad is None else grad.reshape(len(points), -1)[:, i]
        slope = np.asarray(slope.detach() if hasattr(slope, "detach") else slope)
        order = np.argsort(slope if self.increasing else -slope)[:16]
        lo, hi = float(box.lower.reshape(-1)[i]), float(box.upper.reshape(-1)[i])
        pairs = []
        for k in order:
            base = points[k].reshape(-1)
            for h in STEPS:
                half = h * (hi - lo) / 2
                centre = min(max(base[i], lo + half), hi - half)
                a, b = base.copy(), base.copy()
                a[i], b[i] = centre - half, centre + half
                if b[i] > a[i]:
                    pairs.append((a, b))
        return pairs

    def _refute(self, graph: Graph, box: Box | None, i: int, j: int, options: Options):
        def candidates(sbox: Box):
            pairs = self._pairs(graph, sbox, i, j, options)
            if not pairs:
                return []
            a = np.stack([p[0] for p in pairs])
            b = np.stack([p[1] for p in pairs])
            ya, yb = outputs64(graph, a)[:, j], outputs64(graph, b)[:, j]
            change = (yb - ya) if self.increasing else (ya - yb)
            return [
                (a[k].reshape(sbox.shape), b[k].reshape(sbox.shape), change[k] >= 0)
                for k in np.argsort(change)
            ]

        def confirm(pair: Pair):
            same = np.delete(pair.a.reshape(-1), i) == np.delete(pair.b.reshape(-1), i)
            if not (np.all(same) and pair.b.reshape(-1)[i] > pair.a.reshape(-1)[i]):
                return None
            margin = 1e-9 * (1 + abs(pair.ours_a[j]))
            ours = (
                (pair.ours_b[j] - pair.ours_a[j])
                if self.increasing
                else (pair.ours_a[j] - pair.ours_b[j])
            )
            if self._breaks(pair.ort_a[j], pair.ort_b[j]) and ours < -margin:
                return pair
            return None

        return refute_by_pairs(graph, box, options, candidates, confirm)
