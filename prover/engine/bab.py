"""Complete verification by branch and bound (input splits and ReLU splits).

The search keeps a stack of open leaves as tensors and, each round, pops up to
``config.batch`` of them (three quarters depth first, the most recently created; one
quarter the leaves whose parents' candidate points came nearest to an unsafe polytope,
which finds counterexamples early; fewer leaves when the measured cost per leaf says a
full batch would overrun the deadline), bounds them all
with one bounder call (CROWN from ``domains.linear`` when available), and then:

1. closes every leaf on which each unsafe polytope has a row whose *finite* lower bound
   exceeds its ``d``, or whose split constraints are infeasible. Polytopes are handled
   **jointly**: one search tree, and a leaf closes when all polytopes are excluded on
   it (each polytope's excluding row is recorded as evidence);
2. re-bounds the leaves still open with optimised slopes (alpha-CROWN, ``config.alpha``),
   when the estimated cost fits the time left: the objective is each unsafe polytope's
   best row (``config.alpha_objective``); children inherit the slopes, so in input mode
   a few steps per leaf continue the optimisation down the tree;
3. in input mode, narrows the boxes of the leaves still open by moving faces whose
   slabs the leaf's linear bounds exclude (:mod:`prover.engine.clip`, ``config.clip``;
   the split that follows records the narrowing, :class:`proof.Clip`);
4. evaluates, for the leaves still open, the box center and the corners minimising the
   linear lower bounds ``A x + c`` on the concrete semantics, and replays any point that
   lands in an unsafe polytope with ``check_candidate``: only a replayed point makes a
   counterexample;
5. splits the rest: on an input dimension (inputs of at most ``config.input_dims``
   values, e.g. ACAS Xu; scores in :mod:`prover.engine.branching`), or on an unstable
   ReLU (larger inputs, e.g. MNIST; the phases travel to the bounder as ``splits``).
   A leaf whose ReLUs are all fixed or stable is decided by LPs
   (:mod:`prover.engine.lp_leaf`, ``config.lp_leaves``): closed by a rigorous bound with
   the LP's multipliers, or its LP point replayed; else it falls back to input
   splitting. Children
   inherit the parent's pre-activation bounds, which the bounder intersects with its own.

HOLDS is returned only when every leaf was closed by a finite sound bound; the proof tree
is assembled at the end from a compact record (:mod:`prover.engine.record`). VIOLATED is
returned only with a replayed counterexample. Everything else is UNKNOWN with a reason
(timeout, leaves at the maximum depth). Exceptions propagate to the caller. The search is
deterministic: no random choices, ties broken by the lowest index, fixed leaf order.

Evidence of a "linear" leaf: ``{"rows": [row per polytope], "slopes": {...}}``; the
ReLU lower slopes the bounder used (adaptive CROWN or optimised alpha-CROWN) are always
recorded, so the certificate checker replays exactly the relaxation that closed the leaf.
LP leaves add ``"betas"`` (multipliers of the split constraints), which the certificate
lists as an assumption.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from prover import semantics
from prover.engine.bab_config import BabConfig, BabOutcome
from prover.engine.branching import (
    choose_input_dims,
    choose_relu,
    input_scores,
    lookahead_scores,
    relu_scores,
)
from prover.engine.clip import clip_boxes
from prover.engine.falsify import box_points
from prover.engine.frontier import (
    LAST,
    Leaves,
    bisect,
    probe_leaves,
    relu_children,
    restrict,
    take_rows,
)
from prover.engine.leaves import (
    LeafBounds,
    Rows,
    candidates,
    close_mask,
    make_bounder,
    map_tensors,
    relu_inputs,
    row_weights,
)
from prover.engine.local_search import descend, violation
from prover.engine.lp_leaf import decide_leaves
from prover.engine.proof import Clip, Closed
from prover.engine.record import SearchRecord
from prover.errors import ProverError
from prover.ir.graph import Graph
from prover.options import Options
from prover.result import Verdict
from prover.spec import Subproblem

log = logging.getLogger(__name__)


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
        self.device = resolve_device(options.device)
        self.batch = config.batch if self.device.type == "cpu" else config.device_batch
        self.bounder = config.bounder or make_bounder(options.domains, options.alpha_steps)
        self.rows = Rows.stack(subproblem.unsafe, graph.output_size)
        self.shape = tuple(graph.input_shape)
        box = subproblem.box.to_box(self.shape)
        root_lo = torch.from_numpy(np.array(box.lower, dtype=np.float64).reshape(1, -1))
        root_hi = torch.from_numpy(np.array(box.upper, dtype=np.float64).reshape(1, -1))
        self.root_width = (root_hi - root_lo)[0]
        self.relus = relu_inputs(graph)
        self.mode = self._mode(graph.input_size)
        # A run that writes a certificate leaves out, in input mode, the steps whose
        # justification the checker's independent intermediate bounds (tighter on some
        # neurons, looser on others) could not always reproduce: clipping (it rests on
        # the search's own bound of a node) and the alpha pass (its closures are often by
        # a hair: ACAS Xu 3_3 and 4_2 property 2 were rejected by margins of about -1e-5).
        checked_input = self.mode == "input" and options.certificate is not None
        self.clip = self.mode == "input" and not checked_input and config.clip > 0
        self.alpha = (
            self.bounder.supports_alpha
            and not checked_input
            and (config.alpha == "on" or (config.alpha == "auto" and self.mode == "relu"))
        )
        self.alpha_steps = config.input_alpha_steps if self.mode == "input" else None
        self.margins = self.rows.margins() if config.alpha_objective == "margins" else None
        zero = torch.zeros(1, dtype=torch.int64)
        root = {"lower": root_lo, "upper": root_hi, "ids": zero, "depth": zero.clone()}
        self.sizes: list[int] = []
        if self.mode == "relu":
            for name in self.relus:
                size = int(np.prod(graph.shapes[name]))
                self.sizes.append(size)
                root[("split", name)] = torch.zeros((1, size), dtype=torch.int8)
        self.open = Leaves(root)
        self.record = SearchRecord()
        self.stats = {
            "leaves": 0,
            "max_depth": 0,
            "domain_calls": 0,
            "bounded": 0,
            "alpha_bounded": 0,
        }
        self.stuck = 0
        self.cost: dict[bool, float] = {}  # seconds per bounded leaf, plain / alpha
        self.replays = 0
        self.sampling = 0.0  # seconds spent in _sample
        self.promise: torch.Tensor | None = None
        self.generator = torch.Generator().manual_seed(options.seed)
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
    def _pop(self, count: int) -> Leaves:
        """Take ``count`` leaves: the newest (depth first), but a quarter of them are the
        leaves whose parents' candidates came nearest to an unsafe polytope."""
        key = ("promise", "")
        if len(self.open) <= count or key not in self.open.t or count < 4:
            return self.open.split_off(min(count, len(self.open)))
        n = len(self.open)
        pick = torch.zeros(n, dtype=torch.bool)
        pick[n - (count - count // 4) :] = True
        promise = torch.where(pick, torch.inf, self.open[key])
        pick[torch.topk(-promise, count // 4).indices] = True
        chosen = self.open.take(pick)
        self.open = self.open.take(~pick)
        return chosen

    def _alpha_now(self) -> bool:
        """Whether this round has an alpha pass: in input mode only once the search has
        bounded ``config.input_alpha_after`` leaves (most instances end before)."""
        if not self.alpha:
            return False
        return self.mode != "input" or self.stats["bounded"] >= self.config.input_alpha_after

    def _affordable(self, alpha: bool, passes: int = 1) -> int:
        """How many leaves one bounder call can take before the deadline (estimated).

        ``passes``: plain passes per leaf (strong branching bounds each leaf's probes
        too). Before a plain pass, the alpha pass that may follow on the same leaves is
        counted as well, so one round does not overrun the deadline.
        """
        left = self.deadline - time.monotonic()
        cost = self.cost.get(alpha)
        if cost is None:
            return self.batch if left > 0 else 0
        total = passes * cost
        if not alpha and self._alpha_now():
            total += self.cost.get(True, 0.0)
        return max(0, int(left / (1.25 * total)))

    def _bound(self, leaves: Leaves, alpha: bool, final: bool = False) -> LeafBounds:
        self.stats["domain_calls"] += 1
        self.stats["bounded"] += len(leaves)
        if alpha:
            self.stats["alpha_bounded"] += len(leaves)
        n = len(leaves)
        started = time.monotonic()
        try:
            return self._call_bounder(leaves, alpha, final)
        finally:
            per_leaf = (time.monotonic() - started) / n
            old = self.cost.get(alpha)
            self.cost[alpha] = per_leaf if old is None else 0.5 * (old + per_leaf)

    def _call_bounder(self, leaves: Leaves, alpha: bool, final: bool = False) -> LeafBounds:
        n = len(leaves)
        extra: dict[str, Any] = {}
        known = leaves.intermediate()
        if getattr(self.bounder, "supports_reuse", False):
            # The parent's slopes start the alpha pass (in input mode its few steps go on
            # from the parent's). The plain pass keeps the heuristic slopes, which adapt to
            # the leaf's own intermediate bounds: with the parent's, ACAS Xu 3_7 property 1
            # needed 3,212 closed leaves instead of 653.
            warm = leaves.slopes() if alpha else None
            if warm:
                extra["slopes"] = warm
            if alpha:
                extra["steps"] = self.alpha_steps
                extra["margins"] = self.margins
            if final and known:
                extra["final"] = tuple(known)  # computed on these very leaves: use as is
            elif known and LAST in leaves.t and len(leaves):
                newest = int(leaves[LAST].min())  # -1 when some leaf has none
                extra["final"] = tuple(v for v in self.relus[: newest + 1] if v in known)
        move = functools.partial(map_tensors, lambda t: t.to(self.device))
        with torch.enable_grad() if alpha else torch.no_grad():
            bounds = self.bounder.bound(
                self.graph,
                move(leaves["lower"].reshape(n, *self.shape)),
                move(leaves["upper"].reshape(n, *self.shape)),
                move(self.rows.C),
                splits=move(leaves.splits(self.relus)) if self.mode == "relu" else None,
                alpha=alpha,
                intermediate=move(known),
                **move(extra),
            )
        if self.device.type == "cpu":
            return bounds
        # The search's bookkeeping stays on the CPU; only the bounding runs on the device.
        return bounds.map(lambda t: t.to("cpu"))

    def _close(self, leaves: Leaves, bounds: LeafBounds) -> tuple[torch.Tensor, torch.Tensor]:
        """Record the closed leaves; returns (closed mask, excluded polytopes mask)."""
        excluded, row = close_mask(bounds.lower, self.rows)
        closed = excluded.all(dim=1)
        infeasible = bounds.infeasible
        if infeasible is not None:
            infeasible = infeasible.reshape(-1).to(torch.bool)
            closed = closed | infeasible
        ids = leaves["ids"]
        # One copy per round of the closed leaves' slopes (a row each, not Python lists:
        # building lists cost a tenth of ACAS Xu proving time); converted when written.
        index = torch.nonzero(closed).flatten()
        kept = _kept_slopes(bounds.slopes, index)
        position = {int(i): j for j, i in enumerate(index.tolist())}
        for i in index.tolist():
            node = int(ids[i])
            if infeasible is not None and bool(infeasible[i]):
                leaf = Closed("infeasible", {}, self.bounder.name)
            elif self.bounder.rule == "interval":
                leaf = Closed("interval", {}, self.bounder.name)
            else:
                evidence: dict[str, Any] = {"rows": row[i].tolist(), "slopes": {}}
                if kept:
                    evidence["slopes"] = {k: v[position[i]] for k, v in kept.items()}
                leaf = Closed("linear", evidence, self.bounder.name)
            self.record.close(node, leaf)
        self.stats["leaves"] += int(closed.sum())
        return closed, excluded

    def _clip(self, leaves: Leaves, bounds: LeafBounds) -> torch.Tensor:
        """Narrow the open leaves' boxes with their rows' linear bounds (in place), and
        record each narrowing with the slopes of the bound that justifies it. Returns
        which boxes kept less than ``config.reclip`` of their volume."""
        clipped = clip_boxes(
            leaves["lower"], leaves["upper"], bounds.A, bounds.c, self.rows, self.config.clip
        )
        index = torch.nonzero(clipped.moved).flatten()
        before = leaves["upper"] - leaves["lower"]
        share = (clipped.upper - clipped.lower) / torch.where(before > 0, before, 1.0)
        volume = torch.where(before > 0, share, 1.0).prod(dim=1)  # fixed inputs count as kept
        again = clipped.moved & (volume < self.config.reclip)
        if not len(index):
            return again
        self.stats["clipped"] = self.stats.get("clipped", 0) + len(index)
        justify = bounds.slopes if bounds.guide_slopes is None else bounds.guide_slopes
        kept = _kept_slopes(justify, index)
        ids = leaves["ids"][index].tolist()
        for j, (node, i) in enumerate(zip(ids, index.tolist(), strict=True)):
            slopes = {k: v[j] for k, v in kept.items()}
            self.record.clip(node, Clip(tuple(clipped.steps(i)), slopes))
        leaves.t["lower"], leaves.t["upper"] = clipped.lower, clipped.upper
        return again

    def _falsify(self, leaves: Leaves, bounds: LeafBounds) -> np.ndarray | None:
        """Look for a counterexample in the open leaves; returns a replayed one or None.

        Evaluates the candidates of :func:`leaves.candidates`; then the ``descent_points``
        candidates nearest to an unsafe polytope take ``descent_steps`` projected gradient
        steps inside their leaves. Points landing in a polytope are replayed.
        """
        points = candidates(leaves["lower"], leaves["upper"], bounds, self.rows)
        k = points.shape[1]
        flat = points.reshape(-1, points.shape[-1])
        score = self._violation(flat)
        self.promise = score.reshape(-1, k).min(dim=1).values  # per leaf, for the order
        found = self._replay(flat, score)
        if found is None and self.config.samples > 0:
            found = self._sample(leaves)
        if found is not None or self.config.descent_steps <= 0:
            return found
        count = min(self.config.descent_points, score.shape[0])
        best = torch.topk(-score, count).indices  # nearest to the unsafe set first
        box = best // k
        moved = descend(
            self.graph,
            flat[best],
            leaves["lower"][box],
            leaves["upper"][box],
            self.rows,
            self.config.descent_steps,
        )
        return self._replay(moved, self._violation(moved))

    def _sample(self, leaves: Leaves) -> np.ndarray | None:
        """Random points (:func:`falsify.box_points`, ``config.samples`` in all) in the
        most promising leaves (those whose candidates came nearest to an unsafe
        polytope). A violation with a tiny basin, which gradient steps from other points
        miss, becomes likely to be hit once the leaves around it are small."""
        started = time.monotonic()
        samples = self.config.samples
        if self.sampling > self.config.sample_share * (started - self.started):
            samples //= 8  # over its share of the time so far: an eighth this round
        count = min(len(leaves), self.config.sample_leaves)
        best = torch.topk(-self.promise, count).indices
        lo, hi = leaves["lower"][best], leaves["upper"][best]
        per = max(1, samples // count)
        points = box_points(lo, hi, per, self.generator).reshape(-1, lo.shape[1])
        found = self._replay(points, self._violation(points))
        self.sampling += time.monotonic() - started
        return found

    def _violation(self, points: torch.Tensor) -> torch.Tensor:
        """How far each flat input's output is from the unsafe polytopes (<= 0: inside)."""
        with torch.no_grad():
            y = semantics.run(self.graph, points.reshape(-1, *self.shape))
        return violation(y.to(torch.float64), self.rows)

    def _replay(self, points: torch.Tensor, score: torch.Tensor) -> np.ndarray | None:
        """Replay the points whose outputs lie in an unsafe polytope (score <= 0)."""
        inside = torch.nonzero(score <= 0).flatten()
        for k in inside[: self.config.checks_per_round].tolist():
            x = points[k].numpy().reshape(self.shape).copy()
            self.replays += 1
            if self.check(x):
                return x
        return None

    def _split(
        self, leaves: Leaves, bounds: LeafBounds, excluded: torch.Tensor
    ) -> np.ndarray | None:
        """Split every leaf of ``leaves`` (all open) and push the children; leaves with
        nothing left to split are first decided by LPs (``config.lp_leaves``), which
        may return a replayed counterexample."""
        if not len(leaves):
            return None
        deep = leaves["depth"] >= self.config.max_depth
        inherited = self._inherited(bounds)
        if self.promise is not None and self.promise.shape[0] == len(leaves):
            inherited[("promise", "")] = self.promise
        todo = ~deep
        if self.mode == "relu" and bounds.intermediate is not None:
            scores = relu_scores(
                bounds.intermediate,
                leaves.splits(self.relus),
                self.relus,
                bounds.relu_coefficients if self.config.relu_heuristic == "babsr" else None,
                row_weights(bounds.lower, self.rows),
            )
            layer, neuron, has = choose_relu(scores, self.sizes)
            if self.config.lp_leaves and bool((~has).any()):
                done, found = self._lp_leaves(leaves, bounds, ~has)
                if found is not None:
                    return found
                todo &= ~done
                deep &= ~done
            relu = has & todo
            self._push_relu(
                leaves.take(relu), layer[relu], neuron[relu], take_rows(inherited, relu)
            )
            todo &= ~has  # every neuron fixed or stable: fall back to input splitting
        if bool(todo.any()):
            sub, sub_bounds, sub_excluded = restrict(leaves, bounds, excluded, todo)
            sub_inherited = take_rows(inherited, todo)
            scores = input_scores(
                sub["lower"],
                sub["upper"],
                self.root_width,
                sub_bounds,
                self.rows,
                ~sub_excluded,
                self.config.heuristic,
                self.config.starve,
            )
            probing = self.config.lookahead > 1 and self._affordable(False) >= len(sub) * (
                2 * self.config.lookahead
            )
            if probing:
                scores, probe, cand = self._lookahead(sub, sub_inherited, scores)
            _, ok = choose_input_dims(scores)
            if probing:
                self._push_probed(sub, ok, scores, probe, cand)
            else:
                self._push_input(sub.take(ok), scores[ok], take_rows(sub_inherited, ok))
            self.stuck += int((~ok).sum())
        self.stuck += int(deep.sum())
        return None

    def _lp_leaves(self, leaves: Leaves, bounds: LeafBounds, mask: torch.Tensor):
        """Decide the leaves of ``mask`` (every ReLU fixed or stable) by LPs
        (:mod:`prover.engine.lp_leaf`); returns (closed mask, replayed counterexample)."""
        done = torch.zeros(len(leaves), dtype=torch.bool)
        index = torch.nonzero(mask).flatten()
        sub = leaves.take(mask)
        decision = decide_leaves(
            self.graph,
            sub["lower"],
            sub["upper"],
            sub.splits(self.relus),
            self.rows,
            {k: (lo[mask], up[mask]) for k, (lo, up) in (bounds.intermediate or {}).items()},
            deadline=self.deadline,
        )
        if decision is None:
            return done, None
        self.stats["lps"] = self.stats.get("lps", 0) + decision.lps
        for j, leaf in enumerate(decision.closed):
            if leaf is not None:
                self.record.close(int(sub["ids"][j]), leaf)
                done[index[j]] = True
        self.stats["leaves"] += int(done.sum())
        if len(decision.points):
            return done, self._replay(decision.points, self._violation(decision.points))
        return done, None

    def _push_probed(self, leaves, ok, scores, probe: LeafBounds, cand) -> None:
        """Bisect on the best probed dimension; the probe's bounds of the two halves are
        reused: halves they close are closed now, the others inherit their bounds."""
        chosen = leaves.take(ok)
        if not len(chosen):
            return
        c = cand.shape[1]
        dims = scores[ok].argmax(dim=1)
        slot = (cand[ok] == dims[:, None]).to(torch.int8).argmax(dim=1)
        first = torch.nonzero(ok).flatten() * (2 * c) + slot * 2
        index = (first[:, None] + torch.arange(2)).reshape(-1)
        children, _ = bisect(chosen, dims, scores[ok], {}, self.record)
        if self.config.reuse_intermediate and probe.intermediate:
            for name, (lo, up) in probe.intermediate.items():
                children.t[("lo", name)] = lo[index]
                children.t[("up", name)] = up[index]
        infeasible = probe.infeasible
        half = LeafBounds(
            lower=probe.lower[index],
            infeasible=None if infeasible is None else infeasible.reshape(-1)[index],
        )
        closed, _ = self._close(children, half)
        self._note_depth(children)
        self.open.extend(children.take(~closed))

    def _lookahead(self, leaves: Leaves, inherited: dict, base: torch.Tensor):
        """Strong branching (see :func:`frontier.probe_leaves`, ``branching.lookahead_scores``).

        Returns the scores, the probe's bounds and the candidates ``(n, c)``.
        """
        probes, cand = probe_leaves(leaves, inherited, base, self.config.lookahead - 1)
        probe = self._bound(probes, alpha=False)
        scores = lookahead_scores(
            probe,
            self.rows,
            leaves["lower"],
            leaves["upper"],
            base,
            cand,
            self.config.lookahead_score,
        )
        return scores, probe, cand

    def _inherited(self, bounds: LeafBounds) -> dict:
        """The bounds the children inherit (valid on every sub-region of the leaf)."""
        out = {}
        if self.alpha and self.config.warm_slopes and bounds.slopes:
            for name, value in bounds.slopes.items():
                out[("slope", name)] = value.reshape(value.shape[0], -1)
        if not self.config.reuse_intermediate or not bounds.intermediate:
            return out
        for name, (lo, up) in bounds.intermediate.items():
            out[("lo", name)] = lo
            out[("up", name)] = up
        return out

    def _push_input(self, leaves: Leaves, scores: torch.Tensor, inherited: dict) -> None:
        """Bisect each leaf on its best dimension and push the children.

        While the stack holds fewer leaves than a batch, each leaf is bisected several
        times in a row (on the best dimensions by ``scores``, a dimension's score halving
        with its width) so the next rounds are full: fewer, larger domain calls.
        """
        n = len(leaves)
        if n == 0:
            return
        room = self.batch - len(self.open)
        times = 1
        while times < self.config.multi_split and n * 2 ** (times + 1) <= room:
            times += 1
        for step in range(times):
            dims = scores.argmax(dim=1)
            if step and not bool(torch.isfinite(scores.gather(1, dims[:, None])).all()):
                break
            leaves, scores = bisect(leaves, dims, scores, inherited, self.record)
            inherited = {}
        self._note_depth(leaves)
        self.open.extend(leaves)

    def _push_relu(
        self, leaves: Leaves, layer: torch.Tensor, neuron: torch.Tensor, inherited: dict
    ) -> None:
        if len(leaves):
            children = relu_children(leaves, layer, neuron, inherited, self.record, self.relus)
            self._note_depth(children)
            self.open.extend(children)

    def _note_depth(self, leaves: Leaves) -> None:
        self.stats["max_depth"] = max(self.stats["max_depth"], int(leaves["depth"].max()))

    def round(self) -> np.ndarray | None:
        """Bound, close, falsify and split one batch; returns a counterexample or None."""
        probes = 1 + 2 * self.config.lookahead if self.config.lookahead > 1 else 1
        count = min(self.batch, len(self.open), self._affordable(False, probes))
        leaves = self._pop(max(1, count))
        bounds = self._bound(leaves, alpha=False)
        closed, excluded = self._close(leaves, bounds)
        unclosed = int((~closed).sum())
        if self._alpha_now() and unclosed and unclosed <= self._affordable(True):
            keep = ~closed
            leaves, bounds, excluded = restrict(leaves, bounds, excluded, keep)
            final = bool(bounds.intermediate) and self.config.reuse_intermediate
            if final:
                # The plain pass's pre-activation bounds hold on these leaves: the alpha
                # pass reuses them instead of back-substituting again.
                leaves = Leaves(dict(leaves.t))
                for name, (lo, up) in bounds.intermediate.items():
                    leaves.t[("lo", name)] = lo
                    leaves.t[("up", name)] = up
            plain = bounds
            bounds = self._bound(leaves, alpha=True, final=final)
            closed, excluded = self._close(leaves, bounds)
            if self.mode == "input":
                # Input splits, clips and candidate corners follow the plain pass's
                # linear bounds (with the slopes that justify them, for the clips' record);
                # those of the optimised slopes steered splits worse (ACAS Xu 1_3 property
                # 1 with the pass from the start: 1,006 closed leaves instead of 199; 3_7
                # property 1: 4,877 instead of 653). The children still inherit the
                # optimised slopes.
                guide = {"A": plain.A, "c": plain.c, "guide_slopes": plain.slopes}
                bounds = replace(bounds, **guide)
        keep = ~closed
        if not bool(keep.any()):
            return None
        leaves, bounds, excluded = restrict(leaves, bounds, excluded, keep)
        if self.clip and bounds.A is not None:
            again = self._clip(leaves, bounds)
            if bool(again.any()):
                # Narrowed a lot: bound the narrower box again before splitting it.
                inherited = take_rows(self._inherited(bounds), again)
                self.open.extend(Leaves({**leaves.take(again).t, **inherited}))
                leaves, bounds, excluded = restrict(leaves, bounds, excluded, ~again)
                if not len(leaves):
                    return None
        found = self._falsify(leaves, bounds)
        if found is not None:
            return found
        return self._split(leaves, bounds, excluded)

    def run(self) -> BabOutcome:
        while len(self.open):
            now = time.monotonic()
            if now >= self.deadline or self._affordable(False) < 1:
                return self._unknown(
                    timed_out=True,
                    reason=f"timeout after {self.stats['leaves']} closed leaves "
                    f"({len(self.open)} open, depth {self.stats['max_depth']})",
                )
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

    def _unknown(self, reason: str, timed_out: bool = False) -> BabOutcome:
        log.info("bab: unknown: %s", reason)
        return BabOutcome(Verdict.UNKNOWN, None, None, self._stats(), reason, timed_out)


def resolve_device(name: str) -> torch.device:
    """The torch device bounding runs on (``Options.device``); a clear error when absent."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ProverError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ProverError(f"device {name!r} asked for, but torch sees no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise ProverError(f"device {name!r}: only cpu and cuda are supported")
    return device


def _kept_slopes(slopes: dict[str, torch.Tensor] | None, index: torch.Tensor) -> dict:
    """One copy of the slopes at rows ``index`` (a row each, kept as evidence): bool when
    every slope is 0 or 1 (the adaptive ones), which takes an eighth of the memory."""
    kept = {}
    for name, value in (slopes or {}).items():
        rows = value[index].reshape(len(index), value[0].numel())
        binary = bool(((rows == 0) | (rows == 1)).all())
        kept[name] = rows.to(torch.bool) if binary else rows.clone()
    return kept


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
