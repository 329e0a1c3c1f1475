"""``Finite()``: no NaN or Inf anywhere in the computation, under float32 limits.

Proof (HOLDS): interval bounds of every value over the region (``interval`` domain,
sound over the reals, float64 rounding covered), checked node by node in topological
order against float32 limits with a factor-2 margin:

* every value: ``|v| <= FLOAT32_MAX / 2`` (:data:`VALUE_LIMIT`);
* ``Exp`` arguments: ``<= 88`` (``exp(88) < FLOAT32_MAX / 2``; float32 overflows above
  88.72);
* ``Log`` arguments: ``>= 2 * FLOAT32_TINY`` (> 0 with room for float32 underflow);
* ``Sqrt`` arguments: ``>= 0``;
* ``Div`` divisors: ``|b| >= 2 * FLOAT32_TINY``; ``DivConst`` divisors nonzero.

The first node where a check fails is reported by name (``Result.reason`` and
``stats["node"]``). Region ``None`` means every finite float32 input, the box
``[-FLOAT32_MAX, FLOAT32_MAX]^n`` (NaN and Inf inputs are outside the claim).

Counterexamples (VIOLATED): a point of the region at which ONNX Runtime, running the
float32 ONNX twin of the IR (``importers.onnx.export``) with every intermediate value
exposed, produces a NaN or Inf somewhere (intermediate values of the original file are
not observable; ``stats["model_output_finite"]`` tells whether the original model's own
output, replayed on ONNX Runtime, is finite there). Without such a replay: UNKNOWN.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from prover.ir import ops
from prover.ir.graph import Graph
from prover.options import Options
from prover.properties.common import (
    FLOAT32_MAX,
    FLOAT32_TINY,
    Deadline,
    WholeModelProperty,
    fit_region,
    float32_box,
    float32_trace,
    node_bounds,
    replay_point,
)
from prover.properties.search import candidates
from prover.result import Result, Verdict
from prover.spec.regions import Box

log = logging.getLogger(__name__)

VALUE_LIMIT = FLOAT32_MAX / 2
EXP_LIMIT = 88.0
POSITIVE_LIMIT = 2 * FLOAT32_TINY

SOUNDNESS = (
    "real arithmetic over the stored weights (interval bounds, float64 rounding covered); "
    "float32 limits checked with a factor-2 margin (|values| <= FLT_MAX/2, exp arguments "
    "<= 88, log arguments and divisors >= 2*FLT_MIN, sqrt arguments >= 0). ASSUMPTION: "
    "float32 execution stays within that margin of the real values and its ops have no "
    "internal overflow for finite inputs (softmax subtracts the maximum); the float32 "
    "rounding error of the model is not bounded rigorously"
)


@dataclass(frozen=True)
class Problem:
    """Where finiteness could not be shown: the node, its op and why."""

    node: str
    op: str
    kind: str  # "value", "exp", "log", "sqrt", "div"
    detail: str


def _span(bounds) -> tuple[float, float]:
    lo, hi = bounds.lower, bounds.upper
    if bool(torch.isnan(lo).any() or torch.isnan(hi).any()):
        return math.nan, math.nan
    return float(lo.min()), float(hi.max())


def _input_problem(node, values) -> Problem | None:
    op = node.op
    args = [values[name] for name in node.inputs]

    def problem(kind: str, detail: str) -> Problem:
        return Problem(node.name, op.name, kind, detail)

    if isinstance(op, ops.Exp):
        lo, hi = _span(args[0])
        if not hi <= EXP_LIMIT:
            return problem("exp", f"Exp argument may reach {hi:.6g} (> {EXP_LIMIT})")
    if isinstance(op, ops.Log):
        lo, hi = _span(args[0])
        if not lo >= POSITIVE_LIMIT:
            return problem("log", f"Log argument may reach {lo:.6g} (not > 0 with margin)")
    if isinstance(op, ops.Sqrt):
        lo, hi = _span(args[0])
        if not lo >= 0:
            return problem("sqrt", f"Sqrt argument may reach {lo:.6g} (< 0)")
    if isinstance(op, ops.Div):
        b = args[1]
        away = (b.lower >= POSITIVE_LIMIT) | (b.upper <= -POSITIVE_LIMIT)
        if not bool(away.all()):
            lo, hi = _span(b)
            return problem("div", f"divisor may reach 0 (bounds [{lo:.6g}, {hi:.6g}])")
    if isinstance(op, ops.DivConst) and not np.all(op.value != 0):
        return problem("div", "constant divisor holds 0")
    return None


def find_problem(graph: Graph, box: Box, upto: str | None = None) -> Problem | None:
    """The first node (topological order) where finiteness cannot be shown over ``box``.

    Args:
        graph: the network.
        box: the input box.
        upto: stop after this node (check only it and the nodes before it).

    Returns:
        None when every checked node is shown finite, else the first :class:`Problem`.
    """
    values = node_bounds(graph, box)
    for node in graph.nodes:
        found = _input_problem(node, values)
        if found is not None:
            return found
        lo, hi = _span(values[node.name])
        if not (lo >= -VALUE_LIMIT and hi <= VALUE_LIMIT):
            return Problem(
                node.name,
                node.op.name,
                "value",
                f"value bounds [{lo:.6g}, {hi:.6g}] exceed the float32 limit with margin",
            )
        if node.name == upto:
            break
    return None


def ort_trace(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray] | None:
    """Every node's value at ``x`` computed by ONNX Runtime on the float32 ONNX twin.

    The twin is exported from the IR (``importers.onnx.export``) with every node's value
    as an extra graph output. Returns None when the export or the run fails.
    """
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        from importers.onnx.export import export_onnx

        model = export_onnx(graph)
        present = {o.name for o in model.graph.output}
        for node in graph.nodes:
            if node.name not in present:
                model.graph.output.append(
                    helper.make_tensor_value_info(node.name, TensorProto.FLOAT, None)
                )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        feed = {graph.input_name: np.asarray(x, dtype=np.float32).reshape(1, *graph.input_shape)}
        names = [o.name for o in session.get_outputs()]
        with np.errstate(all="ignore"):
            results = session.run(names, feed)
    except Exception as exc:  # noqa: BLE001 - a failed replay is no verdict
        log.info("ONNX Runtime trace failed: %s", exc)
        return None
    return {name: np.asarray(value) for name, value in zip(names, results, strict=True)}


def first_nonfinite(graph: Graph, trace: dict[str, np.ndarray]) -> str | None:
    """The first node (topological order) whose traced value holds NaN or Inf."""
    for node in graph.nodes:
        value = trace.get(node.name)
        if value is not None and not np.all(np.isfinite(value)):
            return node.name
    return None


def _score(graph: Graph, problem: Problem):
    node = graph.node(problem.node)

    def score(values) -> torch.Tensor:
        def flat(name: str) -> torch.Tensor:
            v = values[name]
            return v.reshape(v.shape[0], -1)

        if problem.kind == "exp":
            return flat(node.inputs[0]).max(dim=1).values
        if problem.kind in ("log", "sqrt"):
            return -flat(node.inputs[0]).min(dim=1).values
        if problem.kind == "div" and isinstance(node.op, ops.Div):
            return -flat(node.inputs[1]).abs().min(dim=1).values
        return flat(problem.node).abs().max(dim=1).values

    return score


def _confirm(graph: Graph, box: Box, x: np.ndarray) -> tuple[np.ndarray, str] | None:
    """A float32 point of ``box`` where ONNX Runtime computes a NaN or Inf somewhere."""
    from prover.engine.replay import round_into_box

    point = round_into_box(x, box, np.dtype(np.float32))
    if point is None or not box.contains(point):
        return None
    with np.errstate(all="ignore"):
        trace = ort_trace(graph, point)
    if trace is None:
        return None
    name = first_nonfinite(graph, trace)
    return None if name is None else (point, name)


@dataclass(frozen=True, eq=False)
class Finite(WholeModelProperty):
    """No NaN or Inf in any value of the model over the region (float32 limits)."""

    def violated_by(self, y: np.ndarray) -> bool:
        return not bool(np.all(np.isfinite(np.asarray(y, dtype=np.float64))))

    def describe(self) -> str:
        return "finite: no NaN or Inf in any value (float32 limits)"

    def prove_on(self, graph: Graph, region: object, options: Options) -> Result:
        """Prove finiteness over ``region`` (None: every finite float32 input)."""
        box = fit_region(graph, region)
        box = float32_box(graph) if box is None else box
        problem = find_problem(graph, box)
        if problem is None:
            return Result(
                Verdict.HOLDS,
                method="interval",
                soundness=SOUNDNESS,
                reason="every value bounded within float32 limits over the region",
                stats={"nodes": len(graph.nodes)},
            )
        stats = {"node": problem.node, "op": problem.op, "check": problem.kind}
        deadline = Deadline.after(options, 0.5)
        points = candidates(graph, box, _score(graph, problem), options, deadline, keep=True)
        if not options.falsify:
            points = iter(())
        for x in points:
            if deadline.passed():
                break
            with np.errstate(all="ignore"):
                ours = first_nonfinite(graph, float32_trace(graph, x))
            if ours is None:
                continue
            confirmed = _confirm(graph, box, x)
            if confirmed is not None:
                point, name = confirmed
                with np.errstate(all="ignore"):
                    original = replay_point(graph, point, box)
                stats["model_output_finite"] = (
                    None if original is None else bool(np.all(np.isfinite(original.y)))
                )
                return Result(
                    Verdict.VIOLATED,
                    counterexample=point,
                    method="search",
                    soundness="float32 execution on ONNX Runtime (every value exposed)",
                    reason=f"NaN or Inf at node {name!r} on ONNX Runtime (float32)",
                    stats=dict(stats, node=name),
                )
        return Result(
            Verdict.UNKNOWN,
            method="interval",
            soundness=SOUNDNESS,
            reason=f"cannot show finiteness at node {problem.node!r} ({problem.op}): "
            f"{problem.detail}",
            stats=stats,
        )
