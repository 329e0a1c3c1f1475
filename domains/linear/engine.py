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
from typing import Mapping

import torch

from domains.linear import relax
from domains.linear.floats import UNIT_ROUNDOFF, down, graph_gamma, inflate, rowdot
from domains.linear.forward import ABS, FORWARD, abs_apply
from domains.linear.transfer import NEEDS_BOUNDS, TRANSFER, check_supported
from prover.errors import RegionError, ShapeError
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
    """

    def __init__(
        self,
        graph: Graph,
        lower: torch.Tensor,
        upper: torch.Tensor,
        *,
        splits: Mapping[str, torch.Tensor] | None = None,
        intermediate: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> None:
        check_supported(graph)
        self.graph = graph
        self.input = graph.input_name
        shape = tuple(graph.input_shape)
        if lower.shape != upper.shape or tuple(lower.shape[1:]) != shape:
            raise ShapeError(
                "input box", "linear domain", ("B",) + shape, (tuple(lower.shape), tuple(upper.shape))
            )
        if bool((lower > upper).any()):
            raise RegionError("input box has lower > upper")
        self.batch = lower.shape[0]
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
        self.splits = {
            name: self._shaped(name, value, "split") for name, value in (splits or {}).items()
        }
        self.intermediate = {
            name: (self._shaped(name, lo, "bound"), self._shaped(name, hi, "bound"))
            for name, (lo, hi) in (intermediate or {}).items()
            if name in graph.shapes
        }
        self._boxes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._mags: dict[str, torch.Tensor] = {}
        self._amags: dict[str, torch.Tensor] = {}
        self._relax: dict[str, relax.Relaxation] = {}
        self.slopes: dict[str, torch.Tensor] = {}
        self.infeasible = torch.zeros(self.batch, dtype=torch.bool, device=lower.device)
        self.nonfinite = ~torch.isfinite(lower).flatten(1).all(1) | ~torch.isfinite(
            upper
        ).flatten(1).all(1)
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
            l, u = self._boxes[name]
            self._mags[name] = torch.maximum(l.abs(), u.abs())
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
        l, u = self._boxes[name]
        op = node.op
        if isinstance(op, ops.Relu):
            result = relax.relu(l, u, self.slopes.get(name), self.splits.get(name))
        elif isinstance(op, ops.LeakyRelu):
            result = relax.leaky_relu(l, u, op.alpha)
        elif isinstance(op, ops.Sigmoid):
            result = relax.sigmoid(l, u)
        else:
            result = relax.tanh(l, u)
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
            l, u = self._boxes[name]
            out[name] = (u > -l).to(l.dtype).expand(self.batch, *l.shape[1:]).reshape(self.batch, -1)
        return out

    # -- the forward walk -----------------------------------------------------------------
    def _shaped(self, name: str, value: torch.Tensor, what: str) -> torch.Tensor:
        shape = self.shape(name)
        value = torch.as_tensor(value)
        if value.shape[0] not in (1, self.batch) or value[0].numel() != math.prod(shape):
            raise ShapeError(
                f"{what} for {name!r}", "linear domain", (self.batch, math.prod(shape)), tuple(value.shape)
            )
        return value.reshape(value.shape[0], *shape)

    def _set_box(self, name: str, l: torch.Tensor, u: torch.Tensor) -> None:
        self._boxes[name] = (l, u)
        self._mags.pop(name, None)
        bad = ~(torch.isfinite(l) & torch.isfinite(u))
        if bad.any():
            self.nonfinite = self.nonfinite | bad.expand(self.batch, *bad.shape[1:]).flatten(1).any(1)

    def _forward(self) -> None:
        for node in self.graph.nodes:
            op = node.op
            boxes = [self._boxes[name] for name in node.inputs]
            l, u = FORWARD[type(op)](op, self.gamma, *boxes)
            if type(op) in ABS:
                self._amags[node.name] = abs_apply(op, *(self.mag(n) for n in node.inputs))
            self._set_box(node.name, l, u)
            if node.name in self.needs_bounds:
                if not all(name == self.input for name in node.inputs):
                    self._tighten_by_backsubstitution(node.name)
                self._refine(node.name)

    def _tighten_by_backsubstitution(self, name: str) -> None:
        shape = self.shape(name)
        n = math.prod(shape)
        l, u = self._boxes[name]
        flat_l, flat_u = l.reshape(l.shape[0], n), u.reshape(u.shape[0], n)
        if name in self.piecewise_only:
            # Neurons stable on every box of the batch are relaxed exactly by their
            # interval bounds: only the others need back-substitution.
            wanted = (flat_l < 0) & (flat_u > 0)
            split = self.splits.get(name)
            if split is not None:
                wanted = wanted & (split.reshape(split.shape[0], n) == 0)
            rows_idx = wanted.any(0).nonzero().flatten()
        else:
            rows_idx = torch.arange(n, device=l.device)
        if rows_idx.numel() == 0:
            return
        widest = max(math.prod(s) for s in self.graph.shapes.values())
        chunk = max(1, ROW_CHUNK_ELEMENTS // max(1, 2 * self.batch * widest))
        lo = flat_l.expand(self.batch, n).clone()
        hi = flat_u.expand(self.batch, n).clone()
        for start in range(0, rows_idx.numel(), chunk):
            idx = rows_idx[start : start + chunk]
            k = idx.numel()
            eye = torch.zeros((k, n), dtype=l.dtype, device=l.device)
            eye[torch.arange(k, device=l.device), idx] = 1.0
            lam = torch.cat([eye, -eye]).reshape(1, 2 * k, *shape)
            bound = self.lower_bound(name, lam)
            # torch.maximum / minimum propagate NaN, which then marks the box non-finite.
            lo[:, idx] = torch.maximum(lo[:, idx], bound[:, :k])
            hi[:, idx] = torch.minimum(hi[:, idx], -bound[:, k:])
        self._set_box(name, lo.reshape(self.batch, *shape), hi.reshape(self.batch, *shape))

    def _refine(self, name: str) -> None:
        """Intersect with given bounds, clamp by splits, and record infeasible boxes."""
        l, u = self._boxes[name]
        if name in self.intermediate:
            lo, hi = self.intermediate[name]
            l, u = torch.maximum(l, lo), torch.minimum(u, hi)
        split = self.splits.get(name)
        if split is not None:
            l = torch.where(split > 0, l.clamp(min=0), l)
            u = torch.where(split < 0, u.clamp(max=0), u)
        empty = (l > u).expand(self.batch, *l.shape[1:]).flatten(1).any(1)
        self.infeasible = self.infeasible | empty
        self._set_box(name, l, u)

    # -- back-substitution ----------------------------------------------------------------
    def back_substitute(self, start: str, lam: torch.Tensor):
        """Push ``lam`` (``(b, m, *shape(start))``) back to the input.

        Returns ``(A, const, err)`` with, over the reals and for every input ``x`` in the
        region, ``lam . v(x) >= A . x + const - err_exact`` where ``err_exact <=
        inflate(err)``; ``A`` is ``(b', m, *input_shape)``.

        Soundness: each rule's own guarantee (``transfer``); the sum of two coefficient
        tensors for a value read twice (a DAG) is one rounding per entry, at most
        ``u |sum|`` off, i.e. ``u |sum| . mag`` on the bound; adding a rule's constant to
        the running one costs ``u |const|``. Every such term is added to ``err``.
        """
        lams = {start: lam}
        m = lam.shape[1]
        const = torch.zeros((1, m), dtype=lam.dtype, device=lam.device)
        err = torch.zeros((1, m), dtype=lam.dtype, device=lam.device)
        for node in reversed(self.graph.nodes[: self.position[start] + 1]):
            coeffs = lams.pop(node.name, None)
            if coeffs is None:
                continue
            rule = TRANSFER.rule(node.op, node.source or node.name)
            inputs, c, e = rule(node.op, coeffs, self, node)
            for name, part in zip(node.inputs, inputs):
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
            coeffs = torch.zeros((1, m, *self.shape(self.input)), dtype=lam.dtype, device=lam.device)
        return coeffs, const, err

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
        l, u = self._boxes[self.input]
        value = rowdot(coeffs.clamp(min=0), l) + rowdot(coeffs.clamp(max=0), u) + constant
        err = self.gamma * (rowdot(coeffs.abs(), self.mag(self.input)) + constant.abs())
        return down(value - inflate(err, self.gamma))

    def lower_bound(self, start: str, lam: torch.Tensor, *, coefficients: bool = False):
        """Sound lower bounds ``(B, m)`` of ``lam . v`` for value ``start`` (see class doc).

        With ``coefficients``, returns ``(lower, A, c)`` where ``lam . v(x) >= A . x + c``
        over the region (``A``: ``(B, m, n_in)``, ``c``: ``(B, m)``).
        """
        coeffs, const, err = self.back_substitute(start, lam)
        c = self.sound_constant(const, err)
        lower = self.concretize(coeffs, c)
        lower = lower.expand(self.batch, lower.shape[1])
        if coefficients:
            flat = coeffs.reshape(coeffs.shape[0], coeffs.shape[1], -1)
            return lower, flat.expand(self.batch, *flat.shape[1:]), c.expand(self.batch, c.shape[1])
        return lower
