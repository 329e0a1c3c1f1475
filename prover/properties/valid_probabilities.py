"""``ValidProbabilities()``: every output in [0, 1] and the outputs sum to 1.

Three ways to decide, in this order:

1. **Softmax identity.** When the graph ends in a Softmax over its whole output, the
   identity ``sum(softmax(z)) = 1`` and ``0 <= softmax(z) <= 1`` for every ``z`` in R^k is
   proved by :mod:`prover.symbolic` (real arithmetic). It applies when the Softmax's
   input is a finite real vector: over a box region this is shown by the ``Finite``
   checks on every node up to the Softmax's input; over all inputs (region None) we claim
   it in real arithmetic, where every value is a real number, provided the layers before
   the Softmax are total over the reals (no Log, Sqrt or Div, which can be undefined);
   float32 overflow before the Softmax is then NOT excluded (prove ``Finite`` for it).
2. **Witness search** (sampling, then gradient ascent) with independent confirmation:
   a point of the region at which both ONNX Runtime (float32) and our float64 semantics
   give an output < 0 or > 1, or a sum differing from 1 by more than
   :data:`SUM_TOLERANCE` (float32 execution of a true softmax sums to 1 only up to
   rounding, about ``k * 2^-24``; VIOLATED for the sum means beyond the tolerance).
3. **Bounds** over the region (the domains of ``options.domains``): HOLDS only when every
   output's bounds lie in [0, 1] and the sum's bounds are exactly [1, 1] (bounds almost
   never pin the sum; otherwise UNKNOWN with the bounds).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from domains import get_domain
from prover.errors import PropertyError, ProverError
from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.options import Options
from prover.properties.common import (
    Deadline,
    WholeModelProperty,
    box_tensors,
    fit_region,
    outputs64,
    replay_point,
    search_box,
    with_onnx,
)
from prover.properties.finite import find_problem
from prover.properties.search import candidates
from prover.result import REAL_ARITHMETIC_WITH_ROUNDING, Result, Verdict
from prover.spec.regions import Box

log = logging.getLogger(__name__)

#: A sum of outputs differing from 1 by more than this is a violation (float32 slack).
SUM_TOLERANCE = 1e-5

#: Ops that are undefined for some real inputs.
PARTIAL_OPS = (ops.Log, ops.Sqrt, ops.Div)


def _softmax_output(graph: Graph) -> Node | None:
    """The final Softmax node when it normalises the whole output, else None."""
    if graph.output in dict(graph.inputs):
        return None
    node = graph.node(graph.output)
    if not isinstance(node.op, ops.Softmax):
        return None
    if graph.shapes[node.name][node.op.axis] != graph.output_size:
        return None
    return node


def _ancestors(graph: Graph, name: str) -> set[str]:
    found, stack = set(), [name]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        if current in graph.shapes and current not in dict(graph.inputs):
            stack.extend(graph.node(current).inputs)
    return found


@lru_cache(maxsize=32)
def _softmax_identity(k: int, timeout: float) -> tuple[bool, str]:
    """Prove, for all of R^k, that softmax sums to 1 and that its outputs lie in [0, 1].

    Two claims go to :mod:`prover.symbolic`: ``sum(softmax(x)) == 1`` and
    ``softmax(x)[0] >= 0``. The second covers every component because softmax commutes with
    permutations (``softmax(P x) = P softmax(x)`` and ``P x`` ranges over all of R^k), and
    non-negative components summing to 1 are each at most 1. (Claiming the k-vector
    inequalities directly costs far more solver time for large k.)
    """
    try:
        from prover.symbolic import claim
    except ImportError as exc:
        return False, f"symbolic back end unavailable ({exc})"
    texts = (
        f"forall x in R^{k}: sum(softmax(x)) == 1",
        f"forall x in R^{k}: softmax(x)[0] >= 0",
    )
    for text in texts:
        try:
            result = claim(text, timeout=timeout)
        except ProverError as exc:
            return False, f"symbolic claim {text!r} failed: {exc}"
        if result.verdict is not Verdict.HOLDS:
            return False, f"symbolic claim {text!r}: {result.verdict.value} {result.reason}"
    return True, "; ".join(texts) + " (all components by permutation symmetry)"


@dataclass(frozen=True, eq=False)
class ValidProbabilities(WholeModelProperty):
    """Every output lies in [0, 1] and the outputs sum to 1.

    Attributes:
        sum_tolerance: a witness must miss the sum 1 by more than this.
    """

    sum_tolerance: float = SUM_TOLERANCE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sum_tolerance) and self.sum_tolerance >= 0):
            raise PropertyError(f"sum_tolerance must be finite and >= 0, got {self.sum_tolerance}")

    def violated_by(self, y: np.ndarray) -> bool:
        """Exact predicate: NaN, an output < 0 or > 1, or ``|sum - 1| > sum_tolerance``."""
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(y)):
            return True
        return bool(np.any(y < 0) or np.any(y > 1) or abs(y.sum() - 1) > self.sum_tolerance)

    def describe(self) -> str:
        return f"valid probabilities: outputs in [0, 1], sum 1 (+-{self.sum_tolerance:g})"

    # ------------------------------------------------------------------ proof
    def prove_on(self, graph: Graph, region: object, options: Options) -> Result:
        """Decide the property over ``region`` (None: every input)."""
        box = fit_region(graph, region)
        softmax = _softmax_output(graph)
        notes = []
        if softmax is not None:
            result = self._by_softmax(graph, box, softmax, options)
            if result.verdict is Verdict.HOLDS:
                return result
            notes.append(result.reason)
        witness = self._falsify(graph, search_box(graph, box), options) if options.falsify else None
        if witness is not None:
            return witness
        if box is None:
            notes.append("no bounds over all inputs (give a region for bound-based proof)")
            return Result(Verdict.UNKNOWN, method="search", reason="; ".join(notes))
        return self._by_bounds(graph, box, options, notes)

    def _by_softmax(self, graph: Graph, box: Box | None, softmax: Node, options: Options) -> Result:
        k = graph.output_size
        proved, detail = _softmax_identity(k, max(1.0, min(30.0, options.timeout / 4)))
        if not proved:
            return Result(Verdict.UNKNOWN, method="symbolic", reason=detail)
        source = softmax.inputs[0]
        if box is None:
            partial = [
                graph.node(n)
                for n in _ancestors(graph, source)
                if n in graph.shapes
                and n not in dict(graph.inputs)
                and isinstance(graph.node(n).op, PARTIAL_OPS)
            ]
            if partial:
                return Result(
                    Verdict.UNKNOWN,
                    method="symbolic",
                    reason=f"over all inputs the Softmax input may be undefined: node "
                    f"{partial[0].name!r} ({partial[0].op.name}) is not total over the reals",
                )
            soundness = (
                "real arithmetic over all of R^n: softmax identity proved symbolically for "
                f"R^{k}; the layers before the Softmax are total real functions, so its input "
                "is a real (finite) vector; float32 overflow before the Softmax is NOT "
                "excluded (prove Finite for that)"
            )
        else:
            problem = find_problem(graph, box, upto=source)
            if problem is not None:
                return Result(
                    Verdict.UNKNOWN,
                    method="symbolic",
                    reason=f"softmax identity proved, but its input is not shown finite: node "
                    f"{problem.node!r} ({problem.op}): {problem.detail}",
                )
            soundness = (
                f"softmax identity proved symbolically for R^{k} (real arithmetic); its input "
                "is finite over the region by interval bounds (float32 limits with margin, "
                "see Finite); float32 execution sums to 1 only up to rounding"
            )
        return Result(
            Verdict.HOLDS,
            method="symbolic",
            soundness=soundness,
            reason=f"final Softmax over all {k} outputs: {detail}",
        )

    def _falsify(self, graph: Graph, box: Box, options: Options) -> Result | None:
        tol = self.sum_tolerance

        def score(y: torch.Tensor) -> torch.Tensor:
            flat = y.reshape(y.shape[0], -1)
            parts = torch.stack(
                [
                    (-flat).max(dim=1).values,
                    (flat - 1).max(dim=1).values,
                    (flat.sum(dim=1) - 1).abs() - tol,
                ],
                dim=1,
            )
            return parts.max(dim=1).values

        deadline = Deadline.after(options, 0.5)
        twin = with_onnx(graph)
        for x in candidates(graph, box, score, options, deadline):
            if deadline.passed():
                break
            if not self.violated_by(outputs64(graph, x)[0]):
                continue
            replayed = replay_point(twin, x, box)
            if replayed is None:
                continue
            if self.violated_by(replayed.y) and self.violated_by(outputs64(graph, replayed.x)[0]):
                return Result(
                    Verdict.VIOLATED,
                    counterexample=replayed.x,
                    output=replayed.y,
                    method="search",
                    reason="output outside [0, 1] or sum off 1 on ONNX "
                    f"Runtime and our semantics (sum tolerance {tol:g})",
                    soundness="float32 execution on ONNX Runtime, confirmed in float64",
                )
        return None

    def _by_bounds(self, graph: Graph, box: Box, options: Options, notes: list[str]) -> Result:
        lower, upper = box_tensors(box)
        n = graph.output_size
        lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
        sum_lo, sum_hi = -np.inf, np.inf
        C = torch.cat([torch.ones(1, n), -torch.ones(1, n)]).to(torch.float64)
        for name in options.domains:
            try:
                domain = get_domain(name)
                with torch.no_grad():
                    d_lo, d_hi = domain.bound_outputs(graph, lower, upper)
                    sums = domain.bound_linear(graph, lower, upper, C)[0].numpy()
            except ProverError as exc:
                notes.append(f"{name}: {exc}")
                continue
            d_lo, d_hi = d_lo.reshape(-1).numpy(), d_hi.reshape(-1).numpy()
            lo = np.maximum(lo, np.where(np.isnan(d_lo), -np.inf, d_lo))
            hi = np.minimum(hi, np.where(np.isnan(d_hi), np.inf, d_hi))
            if not math.isnan(sums[0]):
                sum_lo = max(sum_lo, float(sums[0]))
            if not math.isnan(sums[1]):
                sum_hi = min(sum_hi, -float(sums[1]))
        bounds = (lo.reshape(graph.output_shape), hi.reshape(graph.output_shape))
        in_range = bool(np.all(lo >= 0) and np.all(hi <= 1))
        if in_range and sum_lo >= 1 and sum_hi <= 1:
            return Result(
                Verdict.HOLDS,
                bounds=bounds,
                method="bounds",
                soundness=REAL_ARITHMETIC_WITH_ROUNDING,
                reason="output bounds within [0, 1] and the sum's bounds are [1, 1]",
            )
        notes.append(
            f"outputs within [0, 1] by bounds: {'yes' if in_range else 'no'} "
            f"(bounds [{lo.min():.6g}, {hi.max():.6g}]); sum of outputs in "
            f"[{sum_lo:.6g}, {sum_hi:.6g}]: bounds cannot prove the sum is exactly 1"
        )
        return Result(
            Verdict.UNKNOWN,
            bounds=bounds,
            method="bounds",
            reason="; ".join(notes),
            stats={"sum_bounds": (sum_lo, sum_hi)},
        )
