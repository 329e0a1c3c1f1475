"""Settings and result of branch and bound (:mod:`prover.engine.bab`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prover.engine.leaves import Bounder
from prover.engine.proof import ProofTree
from prover.result import Verdict


@dataclass(frozen=True)
class BabConfig:
    """Tuning of the search (the defaults suit ACAS Xu and MNIST-FC on a CPU).

    Attributes:
        batch: leaves bounded per round (256: tensors of a round stay cache-sized; on
            the 2-core benchmark machine 10-20% more leaves per second than 1024).
        device_batch: leaves bounded per round when bounding runs on a GPU
            (``Options.device`` "cuda"): the device needs far larger batches to be busy.
        mode: "auto" (input splits for inputs of at most ``input_dims`` values or when
            the bounder takes no split constraints, ReLU splits otherwise), "input" or "relu".
        input_dims: the largest input size split on its inputs in "auto" mode.
        max_depth: deepest leaf allowed; deeper open leaves make the answer UNKNOWN.
        alpha: re-bound unclosed leaves with optimised slopes: "on", "off" or "auto" (in
            ReLU mode only).
        input_alpha_steps: Adam steps of that pass in input mode (ReLU mode takes
            ``Options.alpha_steps``). Few suffice: children start from the parent's
            slopes, so the optimisation goes on down the tree. ACAS Xu 3_3 property 2
            (2-core CPU): undecided after 1,000 s without the pass, about 20 s with 3
            steps; 1 / 2 / 3 / 5 steps closed 11,560 / 9,692 / 9,601 / 9,262 leaves, and 5
            were 30% slower (measured with the pass from the first round).
        input_alpha_after: in input mode, the alpha pass starts once the search has
            bounded this many leaves (never in runs that write a certificate: the
            independent checker, with intermediate bounds of its own, missed some of
            its closures by about 1e-5). On the 30-instance ACAS Xu sample of ``peers.md``,
            every instance but 4_2 property 2 ends within about 4,000 bounded leaves, and
            there the pass cost 30-100% more time for at most a few percent fewer leaves;
            on the hard instances (4_2 and 3_3 property 2) it decides (starting after
            2,048 / 4,096 / 8,192 bounded leaves: 3_3 property 2 closed 7,716 / 9,008 /
            10,708 leaves).
        alpha_objective: what the slopes are optimised for: "margins" (each unsafe
            polytope's best row, the closing rule; ``domains.linear.alpha.Margins``) or
            "sum" (the sum of all rows' bounds).
        checks_per_round: at most this many candidate replays per round.
        descent_points: candidates refined by gradient descent per round.
        descent_steps: gradient steps of that refinement (0: none).
        samples: uniform random points per round in the ``sample_leaves`` most
            promising open leaves (0: none; seeded by ``Options.seed``).
        sample_leaves: how many leaves share those points.
        sample_share: once sampling has taken more than this share of the search's
            time, a round samples an eighth of ``samples`` (on unsat ACAS Xu instances
            full sampling every round cost about a seventh of the time; every sat ACAS
            Xu instance is found within its first seconds).
        heuristic: input-split scores, see :func:`branching.input_scores`.
        starve: split a dimension once it is this many times wider than the one the
            scores pick (0: never); see :func:`branching.input_scores`.
        lookahead: above 1, strong branching on input splits: the best
            ``lookahead - 1`` dimensions by score and the widest one are tried by bounding
            both halves, and the best is kept (the halves' bounds are reused).
        lookahead_score: how tried splits are compared: "sum" of the halves' clipped
            gaps, or "min" (the worse half).
        multi_split: at most this many bisections of a leaf in one round (while the
            stack holds less than a batch).
        reuse_intermediate: children inherit the parent's pre-activation bounds (the
            bounder intersects them with its own; costs memory per open leaf).
        warm_slopes: with alpha, children inherit the parent's ReLU lower slopes, which
            start their alpha pass (the bound stays sound for any slopes in [0, 1]; the
            slopes actually used are recorded as evidence).
        relu_heuristic: ReLU-split scores, "babsr" (the split's estimated effect on the
            open rows' bounds, from the back-substitution coefficients) or "intercept"
            (the relaxation's looseness alone); see :func:`branching.relu_scores`.
        lp_leaves: in ReLU mode, decide leaves whose ReLUs are all fixed or stable by
            LPs (HiGHS) before falling back to input splitting (:mod:`prover.engine.lp_leaf`).
        clip: in input mode, sweeps over the box faces that narrow each open leaf's box
            with its rows' linear bounds before it is split (:mod:`prover.engine.clip`;
            0: none; a second sweep moved no face on ACAS Xu 4_2 property 2). That instance:
            60,515 closed leaves instead of 99,000 and more. Runs that write a
            certificate do not clip: the narrowing rests on the search's own bounds of
            the node, which the independent checker computes differently (its
            intermediate bounds are tighter on some neurons, looser on others), so it
            could not confirm the steps.
        reclip: a box that clipping leaves with less than this share of its volume is
            bounded again (and clipped again) before it is split (0: never). ACAS Xu 4_2
            property 2: 102,079 bounded leaves instead of 121,029, about 4% less time.
        log_every: seconds between progress messages (INFO).
        bounder: the bounding method; None picks the best available domain.
    """

    batch: int = 256
    device_batch: int = 8192
    mode: str = "auto"
    input_dims: int = 32
    max_depth: int = 400
    alpha: str = "on"
    input_alpha_steps: int = 3
    input_alpha_after: int = 4096
    alpha_objective: str = "margins"
    checks_per_round: int = 8
    descent_points: int = 32
    descent_steps: int = 8
    samples: int = 8192
    sample_leaves: int = 256
    sample_share: float = 0.05
    reuse_intermediate: bool = True
    heuristic: str = "sum"
    multi_split: int = 1
    lookahead: int = 1
    starve: float = 32.0
    lookahead_score: str = "sum"
    warm_slopes: bool = True
    relu_heuristic: str = "babsr"
    lp_leaves: bool = True
    clip: int = 1
    reclip: float = 0.5
    log_every: float = 5.0
    bounder: Bounder | None = None


@dataclass(frozen=True)
class BabOutcome:
    """What branch and bound found.

    Attributes:
        verdict: HOLDS (tree given), VIOLATED (counterexample given) or UNKNOWN.
        counterexample: a replayed input of shape ``graph.input_shape``, or None.
        tree: the proof tree when HOLDS, else None.
        stats: leaves (closed), max_depth, domain_calls, bounded (leaves bounded, in
            all passes), alpha_bounded (of which in alpha passes), time (seconds), mode,
            method.
        reason: why it is UNKNOWN, or a short description.
        timed_out: UNKNOWN because the time ran out (or the next round would overrun it).
    """

    verdict: Verdict
    counterexample: np.ndarray | None = None
    tree: ProofTree | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    timed_out: bool = False
