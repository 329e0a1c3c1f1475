"""Interval bounds on a network's Jacobian over an input box (forward mode).

Every value ``v`` of the graph is abstracted by a :class:`Dual`: interval bounds of the
value itself (from the ``interval`` domain, or from the ops' ranges when the region is
all of R^n) and interval bounds of its Jacobian ``dv/dx`` with respect to the flattened
input ``x`` (a trailing axis of size ``n``). The rules of :data:`JACOBIAN_RULES` push the
Jacobian bounds through each op by the chain rule, with outward rounding.

Why the bounds are sound, also at kinks (ReLU, LeakyReLU, Abs, Clip, MaxPool):

* Every supported op is locally Lipschitz where its derivative bounds are finite, so the
  network ``f`` is. Clarke's chain rule (Clarke, *Optimization and Nonsmooth Analysis*,
  1983, Thm. 2.6.6) gives ``df(x) in co{dg(h(x)) dh(x)}`` for the generalized Jacobians;
  an elementwise map's generalized Jacobian lies in the product of the scalar ones
  (Prop. 2.6.2(e)), and the generalized derivative of a max lies in the hull of the
  active pieces' (Prop. 2.3.12). Each rule encloses these products in an interval
  matrix, and intervals are convex, so the hull is enclosed too: at every point ``z`` of
  the box the generalized Jacobian of ``f`` lies within ``[lower, upper]``.
* Lebourg's mean value theorem (Clarke, Thm. 2.3.7): for each output ``j`` and points
  ``x, y`` of the box (convex), ``f_j(y) - f_j(x) = <g, y - x>`` for some ``g`` in the
  generalized gradient of ``f_j`` at a point of the segment. Hence
  ``|f_j(y) - f_j(x)| <= sum_k max(|lower_jk|, |upper_jk|) |y_k - x_k|`` (Lipschitz
  constants) and ``lower_ji >= 0`` implies ``f_j`` is nondecreasing along ``e_i``
  (monotonicity).

Kinks are only trusted with strict sign information: ReLU's derivative is taken as
exactly 1 only when the pre-activation's lower bound is > 0 (then ``relu = id`` near every
point of the box), and exactly 0 only when its upper bound is < 0; otherwise ``[0, 1]``.

NaN in a Jacobian bound means "unknown" and is replaced at once by ``[-inf, inf]``.
Bounds are over the reals for the given weights; float64 rounding is covered by the
error bounds of :mod:`domains.rounding` (libm values under its stated assumption).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from domains.interval.element import Interval
from domains.interval.transfer import TRANSFER
from domains.rounding import up, upper_sum
from prover.errors import UnsupportedOperation
from prover.ir import ops
from prover.ir.graph import Graph
from prover.ir.interpreter import Table, interpret
from prover.options import Options
from prover.properties.common import box_tensors, finite_or
from prover.properties.jacobian_rules import (
    JACOBIAN_RULES,
    Bounds,
    Dual,
    clean,
    constant_rule,
    fit,
)
from prover.result import Result, Verdict
from prover.spec.regions import Box

__all__ = [
    "Bounds",
    "Dual",
    "JacobianBounds",
    "jacobian_bounds",
    "jacobian_result",
    "refined_bounds",
    "refiners",
    "region_jacobian",
]


@dataclass(frozen=True, eq=False)
class JacobianBounds:
    """Elementwise bounds ``lower <= J <= upper`` of the Jacobian, shape ``(m, n)``.

    ``m`` is the number of outputs and ``n`` of inputs (both flattened). Infinite
    entries mean "unbounded" (NaN never appears: it is turned into the infinite bound).
    """

    lower: np.ndarray
    upper: np.ndarray

    def magnitude(self) -> np.ndarray:
        """Upper bounds of ``|J_jk|`` (``(m, n)``)."""
        return np.maximum(np.abs(self.lower), np.abs(self.upper))

    def lipschitz(self, norm: str = "inf") -> float:
        """A certified Lipschitz constant for ``||f(x) - f(y)||_p <= L ||x - y||_p``.

        ``inf``: ``max_j sum_k M_jk``; ``1``: ``max_k sum_j M_jk``; ``2``:
        ``min(||M||_F, sqrt(||M||_1 ||M||_inf))`` (both bound the spectral norm of ``M``,
        and ``||J d||_2 <= ||M |d| ||_2 <= ||M||_2 ||d||_2``), with ``M = magnitude()``.
        Every sum is rounded up (:func:`domains.rounding.upper_sum`).
        """
        m = torch.as_tensor(self.magnitude(), dtype=torch.float64)
        if not bool(torch.isfinite(m).all()):
            return math.inf
        rows = upper_sum(m, 1) if m.shape[1] else torch.zeros(m.shape[0], dtype=m.dtype)
        cols = upper_sum(m, 0) if m.shape[0] else torch.zeros(m.shape[1], dtype=m.dtype)
        if norm == "inf":
            return float(rows.max()) if rows.numel() else 0.0
        if norm == "1":
            return float(cols.max()) if cols.numel() else 0.0
        if norm == "2":
            frob = up(torch.sqrt(upper_sum(up(m * m), (0, 1))))
            mixed = up(torch.sqrt(up(rows.max() * cols.max())))
            return float(torch.minimum(frob, mixed))
        raise ValueError(f"unknown norm {norm!r}")


# ------------------------------------------------------------------------- driver


def _table(value_table: Table, n: int) -> Table:
    """The Jacobian interpretation: values from ``value_table``, Jacobians by the rules.

    NaN guard on values: once any value bound is NaN, it and every later value (in
    topological order) use the ops' ranges instead, so that a NaN lost downstream cannot
    leave an unjustified finite bound.
    """
    from prover.properties.ranges import RANGES

    tainted = [False]

    def combine(jac_rule, cls):
        def rule(op: ops.Op, *xs: Dual) -> Dual:
            values = tuple(x.value for x in xs)
            value = None
            if not tainted[0]:
                value = value_table.rules[cls](op, *values)
                if bool(torch.isnan(value.lower).any() or torch.isnan(value.upper).any()):
                    tainted[0] = True
            if tainted[0]:
                value = RANGES.rules[cls](op, *values)
            if cls is ops.ConstantOf:
                lo, hi = constant_rule(op, value, n)
            else:
                lo, hi = jac_rule(op, value, *xs)
            return Dual(value, *clean(lo, hi))

        return rule

    rules = {
        cls: combine(jac_rule, cls)
        for cls, jac_rule in JACOBIAN_RULES.items()
        if cls in value_table.rules
    }
    rules[ops.ConstantOf] = combine(None, ops.ConstantOf)
    return Table("jacobian bounds", rules)


#: Ops whose derivative depends on their input's value: their inputs are worth refining.
VALUE_DEPENDENT = (
    ops.Relu,
    ops.LeakyRelu,
    ops.Abs,
    ops.Clip,
    ops.Sigmoid,
    ops.Tanh,
    ops.Exp,
    ops.Log,
    ops.Sqrt,
)


def refiners(options) -> tuple[str, ...]:
    """The domains of ``options.domains`` other than ``interval`` (used to refine)."""
    return tuple(name for name in options.domains if name != "interval")


def refined_bounds(
    graph: Graph, box: Box, domains: tuple[str, ...], deadline: float | None = None
) -> dict[str, Interval]:
    """Tighter bounds of the inputs of value-dependent ops, from other domains.

    Each such value is bounded as the output of the subgraph that computes it, by every
    domain in ``domains`` (e.g. zonotope, crown), and the results are intersected. Sound
    because each domain's bounds are (intersections of sound bounds are sound; NaN is
    ignored). Stops refining when ``deadline`` (``time.monotonic()``) passes.
    """
    from domains import get_domain
    from prover.errors import ProverError

    inputs = {name for name, _ in graph.inputs}
    index = {node.name: k for k, node in enumerate(graph.nodes)}
    wanted = {
        node.inputs[0]
        for node in graph.nodes
        if isinstance(node.op, VALUE_DEPENDENT) and node.inputs[0] not in inputs
    }
    lower, upper = box_tensors(box)
    found: dict[str, Interval] = {}
    for name in sorted(wanted, key=index.__getitem__):
        sub = Graph(graph.inputs, graph.nodes[: index[name] + 1], name, graph.name)
        for domain in domains:
            if deadline is not None and time.monotonic() > deadline:
                return found
            try:
                with torch.no_grad():
                    lo, hi = get_domain(domain).bound_outputs(sub, lower, upper)
            except ProverError:
                continue
            if name in found:
                lo, hi = torch.fmax(lo, found[name].lower), torch.fmin(hi, found[name].upper)
            found[name] = Interval(lo, hi)
    return found


def jacobian_bounds(
    graph: Graph,
    box: Box | None,
    *,
    refine: tuple[str, ...] = (),
    deadline: float | None = None,
) -> JacobianBounds:
    """Sound elementwise bounds of the Jacobian of ``graph`` over ``box``.

    Args:
        graph: a single-input graph.
        box: the input box, or None for all of R^n (values then bounded by the ops'
            ranges only, see :mod:`prover.properties.ranges`).
        refine: domains (e.g. ``("zonotope", "crown")``) that tighten the value bounds of
            the inputs of ReLU-like ops, so more of them have a known sign.
        deadline: ``time.monotonic()`` value after which refinement stops.

    Returns:
        ``(m, n)`` bounds; see the module docstring for why they hold, also at kinks.

    Raises:
        UnsupportedOperation: an op without a Jacobian rule (names the node).
    """
    from prover.properties.ranges import RANGES

    n = graph.input_size
    shape = tuple(graph.input_shape)
    eye = torch.eye(n, dtype=torch.float64).reshape((1,) + shape + (n,))
    refined: dict[str, Interval] = {}
    if box is None:
        value_table = RANGES
        inf = torch.full((1,) + shape, math.inf, dtype=torch.float64)
        start = Interval(-inf, inf)
    else:
        value_table = TRANSFER
        start = Interval(*box_tensors(box))
        if refine:
            refined = refined_bounds(graph, box, refine, deadline)

    def on_value(name: str, dual: Dual) -> Dual | None:
        better = refined.get(name)
        if better is None:
            return None
        value = Interval(
            torch.fmax(dual.value.lower, better.lower), torch.fmin(dual.value.upper, better.upper)
        )
        return Dual(value, dual.lower, dual.upper)

    with torch.no_grad():
        out = interpret(
            graph,
            _table(value_table, n),
            {graph.input_name: Dual(start, eye, eye)},
            on_value=on_value,
        )
        lo = fit(out.lower, 1, out.value.shape, 1).reshape(1, -1, n)[0]
        hi = fit(out.upper, 1, out.value.shape, 1).reshape(1, -1, n)[0]
    return JacobianBounds(lo.numpy().copy(), hi.numpy().copy())


def region_jacobian(
    graph: Graph, box: Box | None, options: Options
) -> tuple[JacobianBounds | None, str]:
    """Jacobian bounds over ``box`` as the whole-model properties use them.

    Refined by the domains of ``options`` other than ``interval`` (:func:`refiners`);
    refinement stops after 0.4 of ``options.timeout``.

    Returns:
        ``(bounds, "")``, or ``(None, note)`` when an op has no Jacobian rule (the note
        names it, for the UNKNOWN reason).
    """
    try:
        bounds = jacobian_bounds(
            graph,
            box,
            refine=refiners(options),
            deadline=time.monotonic() + 0.4 * options.timeout,
        )
    except UnsupportedOperation as exc:
        return None, f"no Jacobian bounds: {exc}"
    return bounds, ""


def jacobian_result(
    holds: bool, certified: float, soundness: str, reason: str, stats: dict
) -> Result:
    """The HOLDS (``holds``) or UNKNOWN result of a whole-model proof by Jacobian bounds.

    ``certified`` is the bound the verdict rests on, reported as ``Result.value`` (by an
    UNKNOWN result only when finite).
    """
    verdict, value = (
        (Verdict.HOLDS, certified) if holds else (Verdict.UNKNOWN, finite_or(certified, None))
    )
    return Result(
        verdict,
        method="jacobian",
        value=value,
        soundness=soundness,
        reason=reason,
        stats=stats,
    )
