"""The back-substitution engine: intermediate bounds, relaxations, concretisation.

:class:`Analysis` analyses one batch of boxes. On construction it walks the graph
forward once (``forward.FORWARD`` interval rules) and, for the input of every nonlinear
op, replaces the interval box by the tighter of it and the back-substitution (CROWN)
bound computed from the relaxations of the earlier nonlinear ops, intersected with given
``intermediate`` bounds and clamped by ReLU split constraints. Afterwards
:meth:`Analysis.lower_bound` bounds ``lam . v`` from below for any value ``v``, by
accumulating linear coefficients per value in reverse topological order (so residual
DAGs are handled) and concretising over the input box.

Intermediate bounds always use the policy's slopes (the adaptive heuristic); only the
final back-substitution from ``C`` uses the slopes set by :meth:`Analysis.set_slopes`
(given, or optimised by ``alpha.optimise``). A replay needs exactly those slopes.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import torch

from domains.linear import relax
from domains.linear.floats import UNIT_ROUNDOFF, down, graph_gamma, inflate, rowdot
from domains.linear.forward import ABS, FORWARD, abs_apply
from domains.linear.transfer import NEEDS_BOUNDS, TRANSFER, check_supported
from prover.errors import GraphError, RegionError, ShapeError
from prover.ir import ops
from prover.ir.graph import Graph, Node

#: coefficient tensors larger than this many elements are computed in row chunks
ROW_CHUNK_ELEMENTS = 2**24


class Analysis:
    """Bounds of one graph over a batch of boxes (see the module docstring).

    Args:
        graph: the graph (single input).
        lower, upper: float64 ``(B, *input_shape)`` box corners.
        splits: ReLU input value name -> int8 ``(B, n)`` (-1 inactive, 0 free, +1 active).
        intermediate: value name -> ``(l, u)`` bounds ``(B, n)`` or ``(B, *shape)`` known
            to hold on the region (e.g. from a parent branch-and-bound node).
        final: names of ``intermediate`` values whose given bounds are not tightened by
            back-substitution (only intersected and clamped by splits).
    """

    def __init__(
        self,
        graph: Graph,
        lower: torch.Tensor,
        upper: torch.Tensor,
        *,
        splits: Mapping[str, torch.Tensor] | None = None,
        intermediate: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
        final: Collection[str] = (),
    ) -> None:
        check_supported(graph)
        self.graph = graph
        self.input = graph.input_name
        shape = tuple(graph.input_shape)
        if lower.shape != upper.shape or tuple(lower.shape[1:]) != shape:
            raise ShapeError(
                "input box",
                "linear domain",
                ("B",) + shape,
                (tuple(lower.shape), tuple(upper.shape)),
            )
        if bool((lower > upper).any()):
            raise RegionError("input box has lower > upper")
        self.batch = lower.shape[0]
        self.device = lower.device
        self.position = {node.name: i for i, node in enumerate(graph.nodes)}
        sizes = [math.prod(s) for s in graph.shapes.values()]
        self.gamma = graph_gamma(sizes, len(graph.nodes))
        self.needs_bounds = {n.inputs[0] for n in graph.nodes if isinstance(n.op, NEEDS_BOUNDS)}
        self.relu_inputs = [n.inputs[0] for n in graph.nodes if isinstance(n.op, ops.Relu)]
        readers: dict[str, set[type]] = {}
        for n in graph.nodes:
            for name in n.inputs:
                readers.setdefault(name, set()).add(type(n.op))
        #: values read only by ReLU / LeakyReLU (stable neurons need no tighter bounds)
        self.piecewise_only = {
            name for name, kinds in readers.items() if kinds <= {ops.Relu, ops.LeakyRelu}
        }
        unknown = sorted(set(splits or {}) - set(self.relu_inputs))
        if unknown:
            raise GraphError(
                f"split constraints name {unknown[0]!r}, which is not the input of a Relu node"
            )
        self.splits = {
            name: self._shaped(name, value, "split") for name, value in (splits or {}).items()
        }
        self.intermediate = {
            name: (self._shaped(name, lo, "bound"), self._shaped(name, hi, "bound"))
            for name, (lo, hi) in (intermediate or {}).items()
            if name in graph.shapes
        }
        self.final = frozenset(name for name in final if name in self.intermediate)
        self._boxes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._mags: dict[str, torch.Tensor] = {}
        self._amags: dict[str, torch.Tensor] = {}
        self._relax: dict[str, relax.Relaxation] = {}
        self.slopes: dict[str, torch.Tensor] = {}
        self.infeasible = torch.zeros(self.batch, dtype=torch.bool, device=lower.device)
        self.nonfinite = ~torch.isfinite(lower).flatten(1).all(1) | ~torch.isfinite(upper).flatten(
            1
        ).all(1)
        with torch.no_grad():
            self._set_box(self.input, lower, upper)
            if self.input in self.needs_bounds:
                self._refine(self.input)
            self._forward()

    # -- accessors used by the transfer rules ---------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        """IR shape of value ``name``."""
        return tuple(self.graph.shapes[name])

    def box(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds ``(l, u)`` of value ``name``, shape ``(B or 1, *shape)``."""
        return self._boxes[name]

    def mag(self, name: str) -> torch.Tensor:
        """``max(|l|, |u|)``: a bound of ``|value|`` on the region."""
        if name not in self._mags:
            lb, ub = self._boxes[name]
            self._mags[name] = torch.maximum(lb.abs(), ub.abs())
        return self._mags[name]

    def amag(self, name: str) -> torch.Tensor:
        """``|L| mag(inputs) + |b|`` of the linear node computing ``name``."""
        return self._amags[name]

    def relaxation(self, node: Node) -> relax.Relaxation:
        """The relaxation of an elementwise nonlinear node over its input's box."""
        cached = self._relax.get(node.name)
        if cached is not None:
            return cached
        name = node.inputs[0]
        lb, ub = self._boxes[name]
        op = node.op
        if isinstance(op, ops.Relu):
            result = relax.relu(lb, ub, self.slopes.get(name), self.splits.get(name))
        elif isinstance(op, ops.LeakyRelu):
            result = relax.leaky_relu(lb, ub, op.alpha)
        elif isinstance(op, ops.Sigmoid):
            result = relax.sigmoid(lb, ub)
        else:
            result = relax.tanh(lb, ub)
        self._relax[node.name] = result
        return result

    def set_slopes(self, slopes: Mapping[str, torch.Tensor]) -> None:
        """Use these ReLU lower slopes (input name -> ``(B, n)`` or shaped) from now on."""
        self.slopes = {name: self._shaped(name, s, "slope") for name, s in slopes.items()}
        for node in self.graph.nodes:
            if isinstance(node.op, ops.Relu):
                self._relax.pop(node.name, None)

    def heuristic_slopes(self) -> dict[str, torch.Tensor]:
        """The adaptive lower slopes (1 where ``u > -l``, else 0) per ReLU input, flat."""
        out = {}
        for name in self.relu_inputs:
            lb, ub = self._boxes[name]
            out[name] = (
                (ub > -lb).to(lb.dtype).expand(self.batch, *lb.shape[1:]).reshape(self.batch, -1)
            )
        return out

    # -- the forward walk -----------------------------------------------------------------
    def _shaped(self, name: str, value: torch.Tensor, what: str) -> torch.Tensor:
        shape = self.shape(name)
        value = torch.as_tensor(value)
        if value.shape[0] not in (1, self.batch) or value[0].numel() != math.prod(shape):
            raise ShapeError(
                f"{what} for {name!r}",
                "linear domain",
                (self.batch, math.prod(shape)),
                tuple(value.shape),
            )
        return value.reshape(value.shape[0], *shape)

    def _set_box(self, name: str, lb: torch.Tensor, ub: torch.Tensor) -> None:
        self._boxes[name] = (lb, ub)
        self._mags.pop(name, None)
        bad = ~(torch.isfinite(lb) & torch.isfinite(ub))
        if bad.any():
            self.nonfinite = self.nonfinite | bad.expand(self.batch, *bad.shape[1:]).flatten(1).any(
                1
            )

    def _forward(self) -> None:
        for node in self.graph.nodes:
            op = node.op
            boxes = [self._boxes[name] for name in node.inputs]
            lb, ub = FORWARD[type(op)](op, self.gamma, *boxes)
            # (ConstantOf has no input to take a device from: its values start on the CPU.)
            lb, ub = lb.to(self.device), ub.to(self.device)
            if type(op) in ABS:
                amag = abs_apply(op, *(self.mag(n) for n in node.inputs))
                self._amags[node.name] = amag.to(self.device)
            self._set_box(node.name, lb, ub)
            if node.name in self.needs_bounds:
                inputs_only = all(name == self.input for name in node.inputs)
                if not inputs_only and node.name not in self.final:
                    self._tighten_by_backsubstitution(node.name)
                self._refine(node.name)

    def _tighten_by_backsubstitution(self, name: str) -> None:
        shape = self.shape(name)
        n = math.prod(shape)
        lb, ub = self._boxes[name]
        if name in self.intermediate:
            # Bounds known on the region (e.g. the parent node's) are intersected first,
            # so neurons they already show stable need no back-substitution. Sound: the
            # intersection of two valid bounds is valid (``_refine`` intersects anyway).
            known_l, known_u = self.intermediate[name]
            lb, ub = torch.maximum(lb, known_l), torch.minimum(ub, known_u)
        flat_l, flat_u = lb.reshape(lb.shape[0], n), ub.reshape(ub.shape[0], n)
        if name in self.piecewise_only:
            # Neurons stable on every box of the batch are relaxed exactly by their
            # interval bounds: only the others need back-substitution. (Split neurons
            # are kept: tighter bounds can show a split infeasible.)
            rows_idx = ((flat_l < 0) & (flat_u > 0)).any(0).nonzero().flatten()
        else:
            rows_idx = torch.arange(n, device=lb.device)
        if rows_idx.numel() == 0:
            return
        widest = max(math.prod(s) for s in self.graph.shapes.values())
        chunk = max(1, ROW_CHUNK_ELEMENTS // max(1, 2 * self.batch * widest))
        lo = flat_l.expand(self.batch, n).clone()
        hi = flat_u.expand(self.batch, n).clone()
        for start in range(0, rows_idx.numel(), chunk):
            idx = rows_idx[start : start + chunk]
            k = idx.numel()
            eye = torch.zeros((k, n), dtype=lb.dtype, device=lb.device)
            eye[torch.arange(k, device=lb.device), idx] = 1.0
            lam = torch.cat([eye, -eye]).reshape(1, 2 * k, *shape)
            bound = self.lower_bound(name, lam)
            # torch.maximum / minimum propagate NaN, which then marks the box non-finite.
            lo[:, idx] = torch.maximum(lo[:, idx], bound[:, :k])
            hi[:, idx] = torch.minimum(hi[:, idx], -bound[:, k:])
        self._set_box(name, lo.reshape(self.batch, *shape), hi.reshape(self.batch, *shape))

    def _refine(self, name: str) -> None:
        """Intersect with given bounds, clamp by splits, and record infeasible boxes."""
        lb, ub = self._boxes[name]
        if name in self.intermediate:
            lo, hi = self.intermediate[name]
            lb, ub = torch.maximum(lb, lo), torch.minimum(ub, hi)
        split = self.splits.get(name)
        if split is not None:
            lb = torch.where(split > 0, lb.clamp(min=0), lb)
            ub = torch.where(split < 0, ub.clamp(max=0), ub)
        empty = (lb > ub).expand(self.batch, *lb.shape[1:]).flatten(1).any(1)
        self.infeasible = self.infeasible | empty
        self._set_box(name, lb, ub)

    # -- back-substitution ----------------------------------------------------------------
    def back_substitute(self, start: str, lam: torch.Tensor, betas=None, record=None):
        """Push ``lam`` (``(b, m, *shape(start))``) back to the input.

        Returns ``(A, const, err)`` with, over the reals and for every input ``x`` in the
        region, ``lam . v(x) >= A . x + const - err_exact`` where ``err_exact <=
        inflate(err)``; ``A`` is ``(b', m, *input_shape)``.

        ``betas`` (ReLU input name -> ``(B, m, n)``, non-negative) are Lagrange
        multipliers of the split constraints (beta-CROWN): when the coefficients of a
        split value ``z`` are complete, ``beta * s`` is subtracted from them, where
        ``s`` is the split sign (+1 active, -1 inactive, 0 free).

        With a dict ``record``, the complete coefficients of every ReLU *output* are
        stored in it, keyed by the ReLU's input name, flat ``(b, m, n)`` (for branching
        heuristics; they play no part in the bound).

        Soundness: each rule's own guarantee (``transfer``); the sum of two coefficient
        tensors for a value read twice (a DAG) is one rounding per entry, at most
        ``u |sum|`` off, i.e. ``u |sum| . mag`` on the bound; adding a rule's constant to
        the running one costs ``u |const|``. Every such term is added to ``err``. Betas:
        on the region ``s z >= 0`` for every split neuron, so for ``beta >= 0``,
        ``lam . v >= lam . v - (beta s) . z``; subtracting the (exact) ``beta s`` from the
        coefficients of ``z`` costs one rounding per entry (``u |new| . mag`` added).
        """
        lams = {start: lam}
        m = lam.shape[1]
        const = torch.zeros((1, m), dtype=lam.dtype, device=lam.device)
        err = torch.zeros((1, m), dtype=lam.dtype, device=lam.device)
        betas = betas or {}
        for node in reversed(self.graph.nodes[: self.position[start] + 1]):
            coeffs = lams.pop(node.name, None)
            if coeffs is None:
                continue
            if node.name in betas:
                coeffs, extra = self._with_beta(node.name, coeffs, betas[node.name])
                err = err + extra
            if record is not None and isinstance(node.op, ops.Relu):
                record[node.inputs[0]] = coeffs.detach().reshape(coeffs.shape[0], m, -1)
            rule = TRANSFER.rule(node.op, node.source or node.name)
            inputs, c, e = rule(node.op, coeffs, self, node)
            for name, part in zip(node.inputs, inputs, strict=False):
                if name in lams:
                    total = lams[name] + part
                    err = err + UNIT_ROUNDOFF * rowdot(total.abs(), self.mag(name))
                    lams[name] = total
                else:
                    lams[name] = part
            if c is not None:
                const = const + c
                err = err + UNIT_ROUNDOFF * const.abs()
            if e is not None:
                err = err + e
        coeffs = lams.get(self.input)
        if coeffs is None:
            coeffs = torch.zeros(
                (1, m, *self.shape(self.input)), dtype=lam.dtype, device=lam.device
            )
        if self.input in betas:
            coeffs, extra = self._with_beta(self.input, coeffs, betas[self.input])
            err = err + extra
        return coeffs, const, err

    def _with_beta(self, name: str, coeffs: torch.Tensor, beta: torch.Tensor):
        split = self.splits.get(name)
        if split is None:
            return coeffs, 0.0
        shape = self.shape(name)
        sign = split.to(coeffs.dtype).unsqueeze(1)
        term = beta.clamp(min=0).reshape(beta.shape[0], -1, *shape) * sign
        new = coeffs - term
        return new, UNIT_ROUNDOFF * rowdot(new.abs(), self.mag(name))

    def sound_constant(self, const: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
        """``c`` with ``lam . v(x) >= A . x + c`` exactly: ``down(const - inflate(err))``."""
        return down(const - inflate(err, self.gamma))

    def concretize(self, coeffs: torch.Tensor, constant: torch.Tensor) -> torch.Tensor:
        """Lower bound of ``A . x + c`` over the input box, rounded down rigorously.

        Soundness: the exact minimum of ``A . x`` over the box is
        ``A+ . l + A- . u`` (``A+``, ``A-`` are exact). Both products are sums of
        ``numel(input)`` products, off by at most ``gamma_N |A+| . |l|`` and
        ``gamma_N |A-| . |u|``; with the two additions, the computed value is within
        ``gamma_N (|A| . mag(x) + |c|)`` of the exact one (``gamma_N`` covers the extra
        roundings, ``N >= 2 numel + 4``). That bound, inflated, is subtracted and the
        result rounded down.
        """
        lb, ub = self._boxes[self.input]
        value = rowdot(coeffs.clamp(min=0), lb) + rowdot(coeffs.clamp(max=0), ub) + constant
        err = self.gamma * (rowdot(coeffs.abs(), self.mag(self.input)) + constant.abs())
        return down(value - inflate(err, self.gamma))

    def lower_bound(
        self,
        start: str,
        lam: torch.Tensor,
        *,
        coefficients: bool = False,
        betas=None,
        record=None,
    ):
        """Sound lower bounds ``(B, m)`` of ``lam . v`` for value ``start`` (see class doc).

        With ``coefficients``, returns ``(lower, A, c)`` where ``lam . v(x) >= A . x + c``
        over the region (``A``: ``(B, m, n_in)``, ``c``: ``(B, m)``). ``betas``: see
        :meth:`back_substitute`, as is ``record``.
        """
        coeffs, const, err = self.back_substitute(start, lam, betas, record)
        c = self.sound_constant(const, err)
        lower = self.concretize(coeffs, c)
        lower = lower.expand(self.batch, lower.shape[1])
        if coefficients:
            flat = coeffs.reshape(coeffs.shape[0], coeffs.shape[1], -1)
            return lower, flat.expand(self.batch, *flat.shape[1:]), c.expand(self.batch, c.shape[1])
        return lower
