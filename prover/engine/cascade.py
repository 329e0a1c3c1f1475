"""The domain cascade: try bound-propagation domains, cheapest first, on one subproblem.

A polytope ``C y <= d`` is unreachable over a box when some row has a *finite* lower
bound of ``C_row y`` strictly greater than ``d_row``. Non-finite bounds prove nothing.
A domain that cannot interpret the graph, or fails, is skipped: a failure never becomes
a verdict.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from domains import get_domain
from prover.errors import ProverError, UnsupportedOperation
from prover.ir.graph import Graph
from prover.spec.properties import Polytope, Subproblem

log = logging.getLogger(__name__)


@dataclass
class CascadeOutcome:
    """What the cascade proved on one subproblem.

    Attributes:
        open: indices of the polytopes still possibly reachable.
        closed_by: polytope index -> (domain name, row index) that closed it.
        output_bounds: the tightest (lower, upper) output bounds found, or None.
        skipped: domain name -> reason it was skipped.
    """

    open: list[int]
    closed_by: dict[int, tuple[str, int]] = field(default_factory=dict)
    output_bounds: tuple[np.ndarray, np.ndarray] | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def proved_rows(lower_bounds: torch.Tensor, d: np.ndarray) -> np.ndarray:
    """Boolean mask of rows whose finite lower bound strictly exceeds ``d``."""
    lb = lower_bounds.detach().cpu().numpy().reshape(-1)
    return np.isfinite(lb) & (lb > d)


def run_cascade(
    graph: Graph,
    subproblem: Subproblem,
    domain_names: tuple[str, ...],
    deadline: float,
) -> CascadeOutcome:
    """Run each domain of ``domain_names`` on ``subproblem`` until every polytope closes."""
    lower = torch.tensor(subproblem.box.lower, dtype=torch.float64).unsqueeze(0)
    upper = torch.tensor(subproblem.box.upper, dtype=torch.float64).unsqueeze(0)
    outcome = CascadeOutcome(open=list(range(len(subproblem.unsafe))))
    for name in domain_names:
        if time.monotonic() > deadline:
            break
        try:
            domain = get_domain(name)
            out_lo, out_hi = domain.bound_outputs(graph, lower, upper)
            _tighten(outcome, out_lo[0].detach().numpy(), out_hi[0].detach().numpy())
            if not outcome.open:
                break
            C, d, owners = _stack([subproblem.unsafe[i] for i in outcome.open])
            lbs = domain.bound_linear(graph, lower, upper, torch.as_tensor(C))
        except UnsupportedOperation as exc:
            outcome.skipped[name] = str(exc)
            log.info("domain %s skipped: %s", name, exc)
            continue
        except ProverError as exc:
            outcome.skipped[name] = str(exc)
            log.info("domain %s unavailable: %s", name, exc)
            continue
        except Exception as exc:  # a failing domain proves nothing, never a verdict
            outcome.skipped[name] = f"{type(exc).__name__}: {exc}"
            log.warning("domain %s failed: %s", name, exc, exc_info=True)
            continue
        rows = proved_rows(lbs, d)
        still_open = []
        for position, polytope_index in enumerate(outcome.open):
            mine = np.flatnonzero((owners == position) & rows)
            if mine.size:
                first_row = int(mine[0] - np.flatnonzero(owners == position)[0])
                outcome.closed_by[polytope_index] = (name, first_row)
            else:
                still_open.append(polytope_index)
        outcome.open = still_open
        log.info(
            "domain %s: %d of %d polytopes open", name, len(still_open), len(subproblem.unsafe)
        )
        if not still_open:
            break
    return outcome


def _stack(polytopes: list[Polytope]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    C = np.concatenate([p.C for p in polytopes])
    d = np.concatenate([p.d for p in polytopes])
    owners = np.concatenate([np.full(p.C.shape[0], i) for i, p in enumerate(polytopes)])
    return C, d, owners


def _tighten(outcome: CascadeOutcome, lo: np.ndarray, hi: np.ndarray) -> None:
    """Intersect the recorded output bounds with (lo, hi), ignoring non-finite entries."""
    lo = np.where(np.isnan(lo), -np.inf, lo)
    hi = np.where(np.isnan(hi), np.inf, hi)
    if outcome.output_bounds is None:
        outcome.output_bounds = (lo, hi)
    else:
        old_lo, old_hi = outcome.output_bounds
        outcome.output_bounds = (np.maximum(old_lo, lo), np.minimum(old_hi, hi))
