"""Complete verification by branch and bound (input splits and ReLU splits).

The search keeps a stack of open leaves as tensors and, each round, pops up to
``config.batch`` of them (depth first: the most recently created), bounds them all with
one bounder call, and then for every leaf:

1. closes it when every unsafe polytope has a row whose finite lower bound exceeds its
   ``d`` (polytopes are handled *jointly*: one tree, a leaf closes when all are
   excluded on it) or its split constraints are infeasible;
2. otherwise, where alpha-CROWN is enabled, re-bounds it with optimised slopes;
3. otherwise evaluates a few candidate points (the center, the corners minimising the
   linear lower bounds) on the concrete semantics and replays any point that lands in
   an unsafe polytope with ``check_candidate``: only a replayed point is a counterexample;
4. otherwise splits it, on the input dimension with the best score (low-dimensional
   inputs) or on the unstable ReLU with the best score (ReLU splitting, when the bounder
   takes split constraints), and pushes both children.

HOLDS is returned only when every leaf was closed by a finite sound bound; the proof tree
is assembled at the end from a compact record (:mod:`prover.engine.record`). VIOLATED is
returned only with a replayed counterexample. Everything else is UNKNOWN with a reason.
Exceptions propagate to the caller. Deterministic: no randomness is used, ties break on
the lowest index, and leaves are processed in a fixed order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from prover import semantics
from prover.engine.branching import choose_input_dims, choose_relu, input_scores, relu_scores
from prover.engine.leaves import (
    Bounder,
    LeafBounds,
    Rows,
    candidates,
    close_mask,
    make_bounder,
    relu_inputs,
)
from prover.engine.proof import Closed, ProofTree
from prover.engine.record import SearchRecord
from prover.ir.graph import Graph
from prover.options import Options
from prover.result import Verdict
from prover.spec import Subproblem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BabConfig:
    """Tuning of the search (the defaults suit ACAS Xu and MNIST-FC on a CPU).

    Attributes:
        batch: leaves bounded per round.
        mode: "auto" (input splits for inputs of at most ``input_dims`` values or when
            the bounder takes no split constraints, ReLU splits otherwise), "input" or "relu".
        input_dims: the largest input size split on its inputs in "auto" mode.
        max_depth: deepest leaf allowed; deeper open leaves make the answer UNKNOWN.
        alpha: re-bound unclosed leaves with optimised slopes ("auto": in ReLU mode).
        checks_per_round: at most this many candidate replays per round.
        reuse_intermediate: children inherit the parent's pre-activation bounds (the
            bounder intersects them with its own; costs memory per open leaf).
        log_every: seconds between progress messages (INFO).
        bounder: the bounding method; None picks the best available domain.
    """

    batch: int = 1024
    mode: str = "auto"
    input_dims: int = 32
    max_depth: int = 400
    alpha: str = "auto"
    checks_per_round: int = 8
    reuse_intermediate: bool = True
    log_every: float = 5.0
    bounder: Bounder | None = None


@dataclass(frozen=True)
class BabOutcome:
    """What branch and bound found.

    Attributes:
        verdict: HOLDS (tree given), VIOLATED (counterexample given) or UNKNOWN.
        counterexample: a replayed input of shape ``graph.input_shape``, or None.
        tree: the proof tree when HOLDS, else None.
        stats: leaves (closed), max_depth, domain_calls, bounded (leaves bounded),
            time (seconds), mode, method.
        reason: why it is UNKNOWN, or a short description.
    """

    verdict: Verdict
    counterexample: np.ndarray | None = None
    tree: ProofTree | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


class _Leaves:
    """A batch of open leaves: named tensors sharing the leading (leaf) axis.

    Keys: ``lower``/``upper`` (flat input boxes), ``ids`` (search node ids), ``depth``,
    ``("split", relu)`` (ReLU phases, int8) and ``("lo", v)``/``("up", v)`` (bounds of
    value ``v`` inherited from the parent node, when reused).
    """

    def __init__(self, tensors: dict) -> None:
        self.t = tensors

    def __len__(self) -> int:
        return int(self.t["ids"].shape[0])

    def __getitem__(self, key):
        return self.t[key]

    def take(self, index: torch.Tensor) -> _Leaves:
        return _Leaves({k: v[index] for k, v in self.t.items()})

    def split_off(self, count: int) -> _Leaves:
        """Remove and return the last ``count`` leaves."""
        keep = len(self) - count
        tail = _Leaves({k: v[keep:] for k, v in self.t.items()})
        self.t = {k: v[:keep] for k, v in self.t.items()}
        return tail

    def extend(self, other: _Leaves) -> None:
        if not len(self):
            self.t = dict(other.t)
            return
        # Inherited bounds are optional: keep only what both sides have.
        self.t = {k: torch.cat([v, other.t[k]]) for k, v in self.t.items() if k in other.t}

    def splits(self, names: list[str]) -> dict[str, torch.Tensor]:
        return {name: self.t[("split", name)] for name in names}

    def intermediate(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
        names = [k[1] for k in self.t if isinstance(k, tuple) and k[0] == "lo"]
        if not names:
            return None
        return {name: (self.t[("lo", name)], self.t[("up", name)]) for name in names}


def _default_check(graph: Graph, subproblem: Subproblem) -> Callable[[np.ndarray], bool]:
    """Exact replay on our float64 semantics: strict box containment, exact polytope test."""

    def check(x: np.ndarray) -> bool:
        x = np.asarray(x, dtype=np.float64).reshape(graph.input_shape)
        if not subproblem.box.contains(x):
            return False
        y = semantics.evaluate(graph, x).reshape(-1)
        return bool(np.isfinite(y).all()) and any(p.contains(y) for p in subproblem.unsafe)

    return check


class _Search:
    """The state of one branch-and-bound run."""

    def __init__(self, graph, subproblem, options, deadline, check, config) -> None:
        self.graph, self.options, self.deadline, self.config = graph, options, deadline, config
        self.check = check or _default_check(graph, subproblem)
        self.bounder = config.bounder or make_bounder(options.domains, options.alpha_steps)
        self.rows = Rows.stack(subproblem.unsafe, graph.output_size)
        self.shape = tuple(graph.input_shape)
        box = subproblem.box.to_box(self.shape)
        root_lo = torch.from_numpy(np.array(box.lower, dtype=np.float64).reshape(1, -1))
        root_hi = torch.from_numpy(np.array(box.upper, dtype=np.float64).reshape(1, -1))
        self.root_width = (root_hi - root_lo)[0]
        self.relus = relu_inputs(graph)
        self.mode = self._mode(graph.input_size)
        self.alpha = self.bounder.supports_alpha and (
            config.alpha == "on" or (config.alpha == "auto" and self.mode == "relu")
        )
        zero = torch.zeros(1, dtype=torch.int64)
        root = {"lower": root_lo, "upper": root_hi, "ids": zero, "depth": zero.clone()}
        self.sizes: list[int] = []
        if self.mode == "relu":
            for name in self.relus:
                size = int(np.prod(graph.shapes[name]))
                self.sizes.append(size)
                root[("split", name)] = torch.zeros((1, size), dtype=torch.int8)
        self.open = _Leaves(root)
        self.record = SearchRecord()
        self.stats = {"leaves": 0, "max_depth": 0, "domain_calls": 0, "bounded": 0}
        self.stuck = 0
        self.replays = 0
        self.started = time.monotonic()
        self.last_log = self.started

    def _mode(self, n_inputs: int) -> str:
        mode = self.config.mode
        if mode == "auto":
            small = n_inputs <= self.config.input_dims
            mode = (
                "input" if small or not self.bounder.supports_splits or not self.relus else "relu"
            )
        if mode == "relu" and not (self.bounder.supports_splits and self.relus):
            mode = "input"
        return mode

    # -- one round ---------------------------------------------------------------------
    def _bound(self, leaves: _Leaves, alpha: bool) -> LeafBounds:
        self.stats["domain_calls"] += 1
        self.stats["bounded"] += len(leaves)
        n = len(leaves)
        with torch.enable_grad() if alpha else torch.no_grad():
            return self.bounder.bound(
                self.graph,
                leaves["lower"].reshape(n, *self.shape),
                leaves["upper"].reshape(n, *self.shape),
                self.rows.C,
                splits=leaves.splits(self.relus) if self.mode == "relu" else None,
                alpha=alpha,
                intermediate=leaves.intermediate(),
            )

    def _close(self, leaves: _Leaves, bounds: LeafBounds) -> tuple[torch.Tensor, torch.Tensor]:
        """Record the closed leaves; returns (closed mask, excluded polytopes mask)."""
        excluded, row = close_mask(bounds.lower, self.rows)
        closed = excluded.all(dim=1)
        infeasible = bounds.infeasible
        if infeasible is not None:
            infeasible = infeasible.reshape(-1).to(torch.bool)
            closed = closed | infeasible
        ids = leaves["ids"]
        for i in torch.nonzero(closed).flatten().tolist():
            node = int(ids[i])
            if infeasible is not None and bool(infeasible[i]):
                leaf = Closed("infeasible", {}, self.bounder.name)
            elif self.bounder.rule == "interval":
                leaf = Closed("interval", {}, self.bounder.name)
            else:
                evidence: dict[str, Any] = {"rows": row[i].tolist(), "slopes": {}}
                if bounds.slopes:
                    evidence["slopes"] = {
                        k: v[i].reshape(-1).tolist() for k, v in bounds.slopes.items()
                    }
                leaf = Closed("linear", evidence, self.bounder.name)
            self.record.close(node, leaf)
        self.stats["leaves"] += int(closed.sum())
        return closed, excluded

    def _falsify(self, leaves: _Leaves, bounds: LeafBounds) -> np.ndarray | None:
        """Evaluate candidates in the open leaves; return a replayed counterexample."""
        points = candidates(leaves["lower"], leaves["upper"], bounds, self.rows)
        flat = points.reshape(-1, points.shape[-1])
        with torch.no_grad():
            y = semantics.run(self.graph, flat.reshape(-1, *self.shape))
        y = y.reshape(y.shape[0], -1).to(torch.float64)
        values = y @ self.rows.C.T - self.rows.d  # <= 0 on every row of a polytope: inside
        inside = torch.zeros(y.shape[0], dtype=torch.bool)
        for start, end in self.rows.spans:
            inside |= (values[:, start:end] <= 0).all(dim=1)
        inside &= torch.isfinite(y).all(dim=1)
        for k in torch.nonzero(inside).flatten()[: self.config.checks_per_round].tolist():
            x = flat[k].numpy().reshape(self.shape).copy()
            self.replays += 1
            if self.check(x):
                return x
        return None

    def _split(self, leaves: _Leaves, bounds: LeafBounds, excluded: torch.Tensor) -> None:
        """Split every leaf of ``leaves`` (all open) and push the children."""
        if not len(leaves):
            return
        deep = leaves["depth"] >= self.config.max_depth
        inherited = self._inherited(bounds)
        todo = ~deep
        if self.mode == "relu" and bounds.intermediate is not None:
            scores = relu_scores(bounds.intermediate, leaves.splits(self.relus), self.relus)
            layer, neuron, has = choose_relu(scores, self.sizes)
            relu = has & todo
            self._push_relu(leaves.take(relu), layer[relu], neuron[relu], _rows(inherited, relu))
            todo &= ~has  # every neuron fixed or stable: fall back to input splitting
        if bool(todo.any()):
            scores = input_scores(
                leaves["lower"], leaves["upper"], self.root_width, bounds, self.rows, ~excluded
            )
            dims, ok = choose_input_dims(scores)
            ok &= todo
            self._push_input(leaves.take(ok), dims[ok], _rows(inherited, ok))
            todo &= ~ok
        self.stuck += int(todo.sum()) + int(deep.sum())

    def _inherited(self, bounds: LeafBounds) -> dict:
        """The bounds the children inherit (valid on every sub-region of the leaf)."""
        if not self.config.reuse_intermediate or not bounds.intermediate:
            return {}
        out = {}
        for name, (lo, up) in bounds.intermediate.items():
            out[("lo", name)] = lo
            out[("up", name)] = up
        return out

    def _children(self, leaves: _Leaves, ids: torch.Tensor, inherited: dict) -> dict:
        depth = leaves["depth"] + 1
        self.stats["max_depth"] = max(self.stats["max_depth"], int(depth.max()))
        # Children interleaved (first, second) per parent keeps siblings adjacent.
        tensors = {"ids": ids.reshape(-1), "depth": depth.repeat_interleave(2)}
        for name in self.relus if self.mode == "relu" else ():
            tensors[("split", name)] = leaves[("split", name)].repeat_interleave(2, 0)
        for key, value in inherited.items():
            tensors[key] = value.repeat_interleave(2, 0)
        return tensors

    def _push_input(self, leaves: _Leaves, dims: torch.Tensor, inherited: dict) -> None:
        n = len(leaves)
        if n == 0:
            return
        index = torch.arange(n)
        lo, up = leaves["lower"], leaves["upper"]
        middle = (lo[index, dims] + up[index, dims]) / 2
        below_up = up.clone()
        below_up[index, dims] = middle
        above_lo = lo.clone()
        above_lo[index, dims] = middle
        ids = torch.empty((n, 2), dtype=torch.int64)
        split = self.record.split_input
        for i, (node, dim, value) in enumerate(
            zip(leaves["ids"].tolist(), dims.tolist(), middle.tolist(), strict=False)
        ):
            ids[i, 0], ids[i, 1] = split(node, dim, value)
        tensors = self._children(leaves, ids, inherited)
        tensors["lower"] = torch.stack([lo, above_lo], 1).reshape(2 * n, -1)
        tensors["upper"] = torch.stack([below_up, up], 1).reshape(2 * n, -1)
        self.open.extend(_Leaves(tensors))

    def _push_relu(
        self, leaves: _Leaves, layer: torch.Tensor, neuron: torch.Tensor, inherited: dict
    ) -> None:
        n = len(leaves)
        if n == 0:
            return
        ids = torch.empty((n, 2), dtype=torch.int64)
        split = self.record.split_relu
        for i, (node, k, j) in enumerate(
            zip(leaves["ids"].tolist(), layer.tolist(), neuron.tolist(), strict=False)
        ):
            ids[i, 0], ids[i, 1] = split(node, self.relus[k], j)
        tensors = self._children(leaves, ids, inherited)
        tensors["lower"] = leaves["lower"].repeat_interleave(2, 0)
        tensors["upper"] = leaves["upper"].repeat_interleave(2, 0)
        index = torch.arange(n)
        for k, name in enumerate(self.relus):
            phases = leaves[("split", name)]
            inactive, active = phases.clone(), phases.clone()
            here = layer == k
            inactive[index[here], neuron[here]] = -1
            active[index[here], neuron[here]] = 1
            tensors[("split", name)] = torch.stack([inactive, active], 1).reshape(2 * n, -1)
        self.open.extend(_Leaves(tensors))

    def round(self) -> np.ndarray | None:
        """Bound, close, falsify and split one batch; returns a counterexample or None."""
        leaves = self.open.split_off(min(self.config.batch, len(self.open)))
        bounds = self._bound(leaves, alpha=False)
        closed, excluded = self._close(leaves, bounds)
        if self.alpha and not bool(closed.all()) and time.monotonic() < self.deadline:
            keep = ~closed
            leaves, bounds, excluded = _restrict(leaves, bounds, excluded, keep)
            bounds = self._bound(leaves, alpha=True)
            closed, excluded = self._close(leaves, bounds)
        keep = ~closed
        if not bool(keep.any()):
            return None
        leaves, bounds, excluded = _restrict(leaves, bounds, excluded, keep)
        found = self._falsify(leaves, bounds)
        if found is not None:
            return found
        self._split(leaves, bounds, excluded)
        return None

    def run(self) -> BabOutcome:
        while len(self.open):
            now = time.monotonic()
            if now >= self.deadline:
                return self._unknown(f"timeout after {self.stats['leaves']} closed leaves")
            if now - self.last_log >= self.config.log_every:
                self.last_log = now
                log.info(
                    "bab: %d open, %d closed, depth %d, %d bounded, %.1fs",
                    len(self.open),
                    self.stats["leaves"],
                    self.stats["max_depth"],
                    self.stats["bounded"],
                    now - self.started,
                )
            found = self.round()
            if found is not None:
                return BabOutcome(
                    Verdict.VIOLATED, found, None, self._stats(), "counterexample replayed"
                )
        if self.stuck:
            return self._unknown(
                f"{self.stuck} leaves could not be split further (max depth "
                f"{self.config.max_depth} or nothing left to split)"
            )
        tree = self.record.build()
        return BabOutcome(Verdict.HOLDS, None, tree, self._stats(), "every leaf closed")

    def _stats(self) -> dict[str, Any]:
        return dict(
            self.stats,
            time=time.monotonic() - self.started,
            mode=self.mode,
            method=self.bounder.name + ("+alpha" if self.alpha else ""),
            open=len(self.open),
            stuck=self.stuck,
            replays=self.replays,
        )

    def _unknown(self, reason: str) -> BabOutcome:
        log.info("bab: unknown: %s", reason)
        return BabOutcome(Verdict.UNKNOWN, None, None, self._stats(), reason)


def _rows(tensors: dict, keep: torch.Tensor) -> dict:
    return {k: v[keep] for k, v in tensors.items()}


def _restrict(leaves: _Leaves, bounds: LeafBounds, excluded: torch.Tensor, keep: torch.Tensor):
    """The leaves, bounds and exclusion masks at the rows where ``keep`` is true."""

    def sub(t):
        return None if t is None else t[keep]

    kept = LeafBounds(
        lower=bounds.lower[keep],
        A=sub(bounds.A),
        c=sub(bounds.c),
        infeasible=sub(bounds.infeasible),
        slopes={k: v[keep] for k, v in bounds.slopes.items()} if bounds.slopes else None,
        intermediate=(
            {k: (lo[keep], up[keep]) for k, (lo, up) in bounds.intermediate.items()}
            if bounds.intermediate
            else None
        ),
    )
    return leaves.take(keep), kept, excluded[keep]


def branch_and_bound(
    graph: Graph,
    subproblem: Subproblem,
    options: Options,
    deadline: float,
    *,
    check_candidate: Callable[[np.ndarray], bool] | None = None,
    config: BabConfig | None = None,
) -> BabOutcome:
    """Decide whether any unsafe polytope of ``subproblem`` is reachable from its box.

    Args:
        graph: the network.
        subproblem: the input box and the disjunction of unsafe polytopes.
        options: run options (domains, alpha_steps, seed).
        deadline: a :func:`time.monotonic` value; the search stops with UNKNOWN after it.
        check_candidate: exact replay of a candidate input (True: a real counterexample).
            Defaults to float64 semantics, strict box containment and the exact polytope
            test.
        config: search tuning (:class:`BabConfig`).

    Returns:
        A :class:`BabOutcome`.
    """
    config = config or BabConfig()
    torch.manual_seed(options.seed)
    if not subproblem.unsafe:
        tree = Closed("interval", {}, "empty")
        return BabOutcome(Verdict.HOLDS, None, tree, {"leaves": 1}, "no unsafe polytope")
    search = _Search(graph, subproblem, options, deadline, check_candidate, config)
    with torch.no_grad():
        return search.run()
