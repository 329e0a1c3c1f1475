"""``verify``: the whole decision procedure as one short, plain sequence.

normalise -> falsify (random + PGD, every candidate replayed on ONNX Runtime) -> domain
cascade, cheap to expensive -> branch and bound -> combine.

The property holds iff, for every subproblem, every unsafe polytope is unreachable. A
verdict comes only from a sound closing of every polytope (HOLDS) or from a replayed
counterexample (VIOLATED); anything else, exceptions included, is UNKNOWN.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from prover import semantics
from prover.engine import falsify
from prover.engine.cascade import run_cascade
from prover.engine.proof import Closed, ProofTree, count_leaves
from prover.engine.replay import replay
from prover.ir.graph import Graph
from prover.options import Options
from prover.result import Result, Verdict
from prover.spec.properties import Property, Subproblem

log = logging.getLogger(__name__)

Violates = Callable[[np.ndarray, np.ndarray], bool]


@dataclass(frozen=True)
class SubproblemVerdict:
    """The outcome on one subproblem."""

    verdict: Verdict
    method: str
    counterexample: np.ndarray | None = None
    tree: ProofTree | list[tuple[list[int], ProofTree]] | None = None
    reason: str = ""
    timed_out: bool = False


def make_confirm(graph: Graph, subproblem: Subproblem, violates: Violates):
    """An exact, independent check of candidate counterexamples on ``subproblem``.

    A candidate is accepted only if, after rounding to the model's input dtype, it lies in
    the box (closed, no tolerance) and both ONNX Runtime's output and our float64
    semantics' output violate the property. Returns the replayed input, or None.
    """

    def confirm(x: np.ndarray) -> np.ndarray | None:
        replayed = replay(graph, x, subproblem.box)
        if replayed is None or not subproblem.box.contains(replayed.x):
            return None
        if not violates(replayed.x, replayed.y):
            return None
        ours = semantics.evaluate(graph, replayed.x).reshape(-1)
        if not violates(replayed.x, ours):
            return None
        return replayed.x

    return confirm


def _bab_available() -> bool:
    return importlib.util.find_spec("prover.engine.bab") is not None


def solve_subproblem(
    graph: Graph,
    subproblem: Subproblem,
    violates: Violates,
    options: Options,
    deadline: float,
) -> tuple[SubproblemVerdict, tuple[np.ndarray, np.ndarray] | None]:
    """Decide one subproblem; returns its verdict and the output bounds found."""
    confirm = make_confirm(graph, subproblem, violates)
    if options.falsify:
        found = falsify.search(
            graph,
            subproblem.box,
            subproblem.unsafe,
            confirm,
            seed=options.seed,
            samples=options.random_samples,
            pgd_steps=options.pgd_steps,
            pgd_restarts=options.pgd_restarts,
            deadline=deadline,
        )
        if found is not None:
            return SubproblemVerdict(Verdict.VIOLATED, "falsification", found), None
    cascade = run_cascade(graph, subproblem, options.domains, deadline)
    if not cascade.open:
        methods = sorted({name for name, _ in cascade.closed_by.values()})
        tree = Closed(rule=_rule_of(methods), method="+".join(methods))
        return SubproblemVerdict(Verdict.HOLDS, "+".join(methods), tree=tree), (
            cascade.output_bounds
        )
    if not options.bab or not _bab_available():
        reason = f"{len(cascade.open)} unsafe polytope(s) not excluded by the domains"
        if cascade.skipped:
            reason += "; skipped: " + "; ".join(f"{k}: {v}" for k, v in cascade.skipped.items())
        return SubproblemVerdict(Verdict.UNKNOWN, "cascade", reason=reason), (cascade.output_bounds)
    from prover.engine.bab import branch_and_bound

    remaining = Subproblem(subproblem.box, tuple(subproblem.unsafe[i] for i in cascade.open))

    def check_candidate(x: np.ndarray) -> bool:
        accepted = confirm(x)
        if accepted is not None:
            check_candidate.found = accepted  # type: ignore[attr-defined]
        return accepted is not None

    outcome = branch_and_bound(graph, remaining, options, deadline, check_candidate=check_candidate)
    counterexample = getattr(check_candidate, "found", None)
    if outcome.verdict is Verdict.VIOLATED:
        if outcome.counterexample is not None:
            counterexample = confirm(outcome.counterexample)
        if counterexample is None:  # never report what we could not replay
            return SubproblemVerdict(
                Verdict.UNKNOWN, "bab", reason="a candidate could not be replayed"
            ), cascade.output_bounds
        return SubproblemVerdict(Verdict.VIOLATED, "bab", counterexample), cascade.output_bounds
    if outcome.verdict is Verdict.HOLDS and outcome.tree is not None:
        tree: Any = outcome.tree
        if cascade.closed_by:  # the cascade closed some polytopes, BaB the rest
            closed = sorted(cascade.closed_by)
            methods = sorted({cascade.closed_by[i][0] for i in closed})
            tree = [
                (closed, Closed(rule=_rule_of(methods), method="+".join(methods))),
                (list(cascade.open), outcome.tree),
            ]
        return SubproblemVerdict(Verdict.HOLDS, "bab", tree=tree), cascade.output_bounds
    return SubproblemVerdict(
        Verdict.UNKNOWN,
        "bab",
        reason=outcome.reason or "branch and bound undecided",
        timed_out=outcome.timed_out,
    ), cascade.output_bounds


def _leaves(tree: ProofTree | list[tuple[list[int], ProofTree]] | None) -> int:
    """Leaves of a subproblem's proof (a tree, or parts each with its own tree)."""
    if tree is None:
        return 0
    if isinstance(tree, list):
        return sum(count_leaves(part) for _, part in tree)
    return count_leaves(tree)


def _rule_of(methods: list[str]) -> str:
    if methods == ["interval"]:
        return "interval"
    if all(m in ("crown", "deeppoly", "alpha-crown") for m in methods):
        return "linear"
    return "domain:" + "+".join(methods)


def verify(
    graph: Graph,
    prop: Property,
    subproblems: list[Subproblem],
    violates: Violates,
    options: Options,
) -> Result:
    """Decide ``prop`` over ``subproblems``; see the module docstring for the sequence."""
    start = time.monotonic()
    deadline = start + options.timeout
    verdicts: list[SubproblemVerdict] = []
    output_bounds = None
    for subproblem in subproblems:
        try:
            verdict, found_bounds = solve_subproblem(graph, subproblem, violates, options, deadline)
        except Exception as exc:  # never a verdict: report it as UNKNOWN
            log.warning("verification failed: %s", exc, exc_info=True)
            verdict = SubproblemVerdict(
                Verdict.UNKNOWN, "error", reason=f"{type(exc).__name__}: {exc}"
            )
            found_bounds = None
        if found_bounds is not None and len(subproblems) == 1:
            output_bounds = found_bounds
        verdicts.append(verdict)
        if verdict.verdict is Verdict.VIOLATED:
            break
        if time.monotonic() > deadline and verdict.verdict is not Verdict.HOLDS:
            break
    elapsed = time.monotonic() - start
    stats = {"subproblems": len(subproblems), "trees": [v.tree for v in verdicts]}
    violated = [v for v in verdicts if v.verdict is Verdict.VIOLATED]
    if violated:
        v = violated[0]
        y = semantics.evaluate(graph, v.counterexample)
        return Result(
            Verdict.VIOLATED,
            counterexample=v.counterexample,
            bounds=output_bounds,
            method=v.method,
            elapsed=elapsed,
            output=y,
            stats=stats,
            reason="counterexample replayed on ONNX Runtime",
        )
    if len(verdicts) == len(subproblems) and all(v.verdict is Verdict.HOLDS for v in verdicts):
        methods = "+".join(sorted({v.method for v in verdicts}))
        stats["proof_leaves"] = sum(_leaves(v.tree) for v in verdicts)
        return Result(
            Verdict.HOLDS, bounds=output_bounds, method=methods, elapsed=elapsed, stats=stats
        )
    reasons = [v.reason for v in verdicts if v.verdict is Verdict.UNKNOWN and v.reason]
    unattempted = len(verdicts) < len(subproblems)
    if unattempted:
        reasons.append(
            f"timeout after {elapsed:.1f}s ({len(verdicts)} of "
            f"{len(subproblems)} subproblems attempted)"
        )
    # Branch and bound stops *before* the deadline when its next round would overrun it:
    # that is a timeout too.
    timed_out = time.monotonic() > deadline or unattempted or any(v.timed_out for v in verdicts)
    stats["timeout"] = timed_out
    return Result(
        Verdict.UNKNOWN,
        bounds=output_bounds,
        method="+".join(sorted({v.method for v in verdicts})) or "none",
        elapsed=elapsed,
        reason="; ".join(reasons) or "undecided",
        stats=stats,
    )
