"""Shared pieces of the whole-model properties: regions, per-node bounds, replay.

The whole-model properties (:mod:`prover.properties`) decide themselves instead of going
through the polytope engine: ``prover.api.prove`` calls their ``prove_on(graph, region,
options)``. This module holds what they share:

* fitting the region (a Box, a LinfBall, or None for "all inputs") to the model;
* per-node interval bounds from the ``interval`` domain, NaN-guarded;
* float32 reference traces and replay of candidate witnesses on ONNX Runtime, using the
  model's ONNX form, or an ONNX twin exported from the IR when it has none;
* small helpers to build :class:`~prover.result.Result` objects.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from domains.interval.element import Interval
from domains.interval.transfer import TRANSFER
from prover import semantics
from prover.errors import PropertyError, ProverError, RegionError
from prover.ir.graph import Graph, ModelOrigin
from prover.ir.interpreter import interpret
from prover.options import Options
from prover.result import Result, Verdict
from prover.spec.properties import Property
from prover.spec.regions import Box, LinfBall

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Largest finite float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Smallest positive normal float32.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class Deadline:
    """A wall-clock deadline (``time.monotonic`` seconds)."""

    at: float

    @staticmethod
    def after(options: Options, fraction: float = 1.0) -> Deadline:
        """The deadline ``fraction`` of ``options.timeout`` from now."""
        return Deadline(time.monotonic() + max(0.0, options.timeout) * fraction)

    def passed(self) -> bool:
        """Whether the deadline is over."""
        return time.monotonic() > self.at


def fit_region(graph: Graph, region: object) -> Box | None:
    """The region as a Box of the model's input shape, or None for "all inputs".

    Raises:
        RegionError: for a region of another kind or of the wrong size.
    """
    if region is None:
        return None
    if isinstance(region, (Box, LinfBall)):
        return region.to_box(graph.input_shape)
    raise RegionError(f"expected a Box, a LinfBall or None, got {type(region).__name__}")


def float32_box(graph: Graph) -> Box:
    """Every finite float32 input: ``[-FLOAT32_MAX, FLOAT32_MAX]^n``."""
    shape = graph.input_shape
    return Box(np.full(shape, -FLOAT32_MAX), np.full(shape, FLOAT32_MAX))


def search_box(graph: Graph, box: Box | None) -> Box:
    """Where to look for witnesses: the region, or ``[-1, 1]^n`` for "all inputs"."""
    if box is not None:
        return box
    return Box(-np.ones(graph.input_shape), np.ones(graph.input_shape))


def box_tensors(box: Box) -> tuple[torch.Tensor, torch.Tensor]:
    """The box as a batch of one: two float64 tensors ``(1, *shape)``."""
    lower = torch.as_tensor(np.array(box.lower), dtype=torch.float64).unsqueeze(0)
    upper = torch.as_tensor(np.array(box.upper), dtype=torch.float64).unsqueeze(0)
    return lower, upper


def node_bounds(graph: Graph, box: Box) -> dict[str, Interval]:
    """Interval bounds of every value of ``graph`` over ``box`` (interval domain).

    NaN guard: once any bound holds NaN, that value and every value computed after it (in
    topological order) get NaN bounds, so that a NaN lost downstream (by a ``where`` or a
    clamp) cannot leave a finite but unjustified bound. Callers treat NaN as "unknown".
    """
    lower, upper = box_tensors(box)
    seen_nan = [False]

    def on_value(name: str, value: Interval) -> Interval | None:
        if not seen_nan[0]:
            seen_nan[0] = bool(torch.isnan(value.lower).any() or torch.isnan(value.upper).any())
        if seen_nan[0]:
            nan = torch.full_like(value.lower, math.nan)
            return Interval(nan, nan.clone())
        return None

    with torch.no_grad():
        return interpret(
            graph,
            TRANSFER,
            {graph.input_name: Interval(lower, upper)},
            keep=True,
            on_value=on_value,
        )


def float32_trace(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every value of ``graph`` at ``x`` computed in float32 by our semantics (no batch)."""
    point = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(graph.input_shape))
    with torch.no_grad():
        values = semantics.run(graph, point.unsqueeze(0), keep=True)
    return {name: value[0].numpy() for name, value in values.items()}


def outputs64(graph: Graph, points: np.ndarray) -> np.ndarray:
    """Our float64 semantics on a batch of points; returns ``(B, n_outputs)``."""
    batch = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(
        (-1,) + tuple(graph.input_shape)
    )
    with torch.no_grad():
        out = semantics.run(graph, batch)
    return out.reshape(out.shape[0], -1).numpy()


def with_onnx(graph: Graph) -> Graph:
    """``graph`` itself when it has an ONNX form, else a copy with an exported ONNX twin.

    The twin (``importers.onnx.export``, float32) lets ONNX Runtime, an executor we did
    not write, replay witnesses of IR graphs built in memory. When the export fails the
    graph is returned unchanged (witnesses then cannot be replayed: no VIOLATED).
    """
    if graph.origin is not None and graph.origin.onnx_bytes is not None:
        return graph
    try:
        from importers.onnx.export import export_onnx

        data = export_onnx(graph).SerializeToString()
    except (ProverError, ImportError, ValueError, KeyError) as exc:
        log.info("no ONNX twin for %s: %s", graph.name, exc)
        return graph
    origin = ModelOrigin(
        onnx_bytes=data,
        onnx_input_name=graph.input_name,
        onnx_input_shape=(1, *graph.input_shape),
        onnx_input_dtype="float32",
        sha256=hashlib.sha256(data).hexdigest(),
        kind="export",
    )
    return Graph(graph.inputs, graph.nodes, graph.output, graph.name, origin)


def replay_point(graph: Graph, x: np.ndarray, box: Box):
    """Replay ``x`` on ONNX Runtime (rounded into ``box``); None when impossible."""
    from prover.engine.replay import replay

    try:
        replayed = replay(graph, x, box)
    except Exception as exc:  # noqa: BLE001 - ORT errors must not become verdicts
        log.info("replay failed: %s", exc)
        return None
    if replayed is None or not box.contains(replayed.x):
        return None
    return replayed


def random_points(box: Box, count: int, generator: torch.Generator) -> np.ndarray:
    """``count`` uniform points of ``box`` plus its center and its two corners."""
    lower, upper = box_tensors(box)
    shape = (count,) + tuple(box.shape)
    points = lower + (upper - lower) * torch.rand(shape, generator=generator, dtype=torch.float64)
    extra = torch.cat([(lower + upper) / 2, lower, upper])
    return torch.cat([points, extra]).numpy()


def unknown(method: str, reason: str, soundness: str = "", **fields) -> Result:
    """An UNKNOWN result."""
    result = Result(Verdict.UNKNOWN, method=method, reason=reason, **fields)
    if soundness:
        from dataclasses import replace

        result = replace(result, soundness=soundness)
    return result


def finite_or(value: float, default: float | None = math.inf) -> float | None:
    """``value`` when finite, else ``default`` (NaN bounds read as unknown)."""
    return value if math.isfinite(value) else default


@dataclass(frozen=True)
class Pair:
    """Two replayed inputs and their outputs on ONNX Runtime and on our float64 semantics."""

    a: np.ndarray
    b: np.ndarray
    ort_a: np.ndarray
    ort_b: np.ndarray
    ours_a: np.ndarray
    ours_b: np.ndarray


def replay_pair(twin: Graph, a: np.ndarray, b: np.ndarray, box: Box) -> Pair | None:
    """Replay both points of a candidate pair (rounded into ``box``); None if impossible."""
    ra, rb = replay_point(twin, a, box), replay_point(twin, b, box)
    if ra is None or rb is None:
        return None
    ours = outputs64(twin, np.stack([ra.x, rb.x]))
    return Pair(ra.x, rb.x, ra.y, rb.y, ours[0], ours[1])


#: Candidate pairs replayed on ONNX Runtime, at the most, by :func:`refute_by_pairs`.
REPLAYED_PAIRS = 16


def refute_by_pairs(
    graph: Graph,
    box: Box | None,
    options: Options,
    candidates: Callable[[Box], list[tuple[np.ndarray, np.ndarray, bool]]],
    confirm: Callable[[Pair], T | None],
) -> T | None:
    """Look for a pair of points that breaks a two-point property (Lipschitz, monotonic).

    ``candidates(sbox)`` ranks pairs ``(a, b, hopeless)`` of the search box
    (:func:`search_box`), most promising first; the first :data:`REPLAYED_PAIRS` are
    replayed on ONNX Runtime (rounded into the box) until one is ``hopeless`` or half of
    ``options.timeout`` (counted from the call) has passed. ``confirm`` judges each
    replayed :class:`Pair`; its first non-None answer is returned.

    Returns:
        ``confirm``'s answer, or None when no candidate pair was confirmed.
    """
    deadline = Deadline.after(options, 0.5)
    sbox = search_box(graph, box)
    ranked = candidates(sbox)
    if not ranked:
        return None
    twin = with_onnx(graph)
    for a, b, hopeless in ranked[:REPLAYED_PAIRS]:
        if hopeless or deadline.passed():
            break
        pair = replay_pair(twin, a, b, sbox)
        if pair is None:
            continue
        found = confirm(pair)
        if found is not None:
            return found
    return None


class WholeModelProperty(Property):
    """Base of the whole-model properties: decided by ``prove_on``, not by polytopes."""

    def unsafe_polytopes(self, n_outputs: int):
        """Always raises: these properties have no unsafe-polytope normal form.

        Raises:
            PropertyError: naming the property (its certificates are of the whole-model
                kind, proofs/FORMAT.md section 11, not unsafe-polytope proofs).
        """
        raise PropertyError(
            f"{type(self).__name__} is a whole-model property without an unsafe-polytope "
            "normal form: prove it with prover.prove (its certificate binds the claim to the "
            "model without re-deriving it; proofs/FORMAT.md section 11)"
        )
