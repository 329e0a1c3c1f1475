"""Bounding a batch of branch-and-bound leaves, and deciding which of them are closed.

A *bounder* turns a batch of leaves (input boxes, and ReLU phase constraints when it
supports them) into sound lower bounds of ``C y`` for every row of the unsafe polytopes,
optionally with the linear function ``A x + c`` those bounds come from (used for
branching and counterexample search). Two adapters are provided:

* :class:`DomainBounder` wraps any registered domain's ``bound_linear`` (interval,
  zonotope, crown...): bounds only, no split constraints.
* :class:`LinearBounder` wraps ``domains.linear.api.linear_bounds`` (CROWN / alpha-CROWN
  with split constraints, intermediate bounds, coefficients and slopes).

:func:`close_mask` applies the closing rule: a polytope is unreachable on a leaf when one
of its rows has a *finite* lower bound strictly above its ``d``; a leaf is closed when
every polytope is unreachable on it (or the leaf is infeasible).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import torch

import domains
from domains.linear.alpha import Margins
from prover.errors import ProverError
from prover.ir import ops
from prover.ir.graph import Graph
from prover.spec import Polytope

#: Domain names whose closing rule in the proof is "linear" (the rest are "interval").
LINEAR_METHODS = ("crown", "alpha-crown", "deeppoly", "zonotope")


@dataclass
class LeafBounds:
    """Bounds of one batch of leaves.

    Attributes:
        lower: ``(B, m)`` sound lower bounds of ``C @ y`` over each leaf.
        A: ``(B, m, n_in)`` coefficients with ``C y(x) >= A x + c`` on the leaf, or None.
        c: ``(B, m)`` offsets matching ``A``, or None.
        infeasible: ``(B,)`` bool, leaves whose split constraints contradict, or None.
        slopes: ReLU lower slopes used, ``{relu input name: (B, ...) tensor}``, or None.
        intermediate: ``{relu input name: (lower, upper)}`` pre-activation bounds
            ``(B, n)`` over each leaf, or None.
        relu_coefficients: ``{relu input name: (B, m, n)}`` coefficients of each ReLU's
            output in the bound of every row (for branching), or None.
        guide_slopes: the slopes of the bound that ``A`` and ``c`` come from, when that
            is not ``slopes`` (input mode after an alpha pass: the children inherit the
            optimised ``slopes``, while splits and clips follow the plain pass's ``A x +
            c``, and a clip's record cites the slopes that justify it); else None.
    """

    lower: torch.Tensor
    A: torch.Tensor | None = None
    c: torch.Tensor | None = None
    infeasible: torch.Tensor | None = None
    slopes: dict[str, torch.Tensor] | None = None
    intermediate: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
    relu_coefficients: dict[str, torch.Tensor] | None = None
    guide_slopes: dict[str, torch.Tensor] | None = None

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> LeafBounds:
        """The same bounds with ``fn`` applied to every tensor (e.g. rows, a device)."""
        return LeafBounds(**{f.name: map_tensors(fn, getattr(self, f.name)) for f in fields(self)})


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], value):
    """``value`` with ``fn`` applied to each tensor in it (tensors, and dicts, tuples and
    lists of them; anything else is returned as it is)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_tensors(fn, v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(map_tensors(fn, v) for v in value)
    return value


class Bounder(Protocol):
    """What branch and bound needs from a bound-propagation method."""

    name: str
    rule: str
    supports_splits: bool
    supports_alpha: bool

    def bound(
        self,
        graph: Graph,
        lower: torch.Tensor,
        upper: torch.Tensor,
        C: torch.Tensor,
        *,
        splits: dict[str, torch.Tensor] | None = None,
        alpha: bool = False,
        intermediate: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> LeafBounds:
        """Bound ``C y`` over each box of the batch (shapes ``(B, *input_shape)``).

        ``intermediate`` holds pre-activation bounds known to hold on each region (from
        the parent node), which a bounder may intersect with its own.
        """
        ...


class DomainBounder:
    """Adapter for a registered domain's ``bound_linear`` (no split constraints)."""

    supports_splits = False
    supports_alpha = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.rule = "linear" if name in LINEAR_METHODS else "interval"
        self._domain = domains.get_domain(name)

    def bound(
        self, graph, lower, upper, C, *, splits=None, alpha=False, intermediate=None
    ) -> LeafBounds:
        if splits:
            raise ProverError(f"domain {self.name!r} cannot take ReLU split constraints")
        return LeafBounds(lower=self._domain.bound_linear(graph, lower, upper, C))


class LinearBounder:
    """Adapter for ``domains.linear.api.linear_bounds`` (CROWN, alpha-CROWN, splits)."""

    supports_splits = True
    supports_alpha = True
    #: ``bound`` also takes ``slopes`` (warm start), ``final`` (intermediate bounds
    #: used as given), ``steps`` (Adam steps of an alpha pass, instead of the bounder's
    #: own) and ``margins`` (the alpha objective); see ``domains.linear.api.linear_bounds``.
    supports_reuse = True
    rule = "linear"

    def __init__(self, policy: str = "crown", alpha_steps: int = 20) -> None:
        api = importlib.import_module("domains.linear.api")
        self._linear_bounds = api.linear_bounds
        self.name = policy
        self.policy = policy
        self.alpha_steps = alpha_steps

    def bound(
        self,
        graph,
        lower,
        upper,
        C,
        *,
        splits=None,
        alpha=False,
        intermediate=None,
        slopes=None,
        final=(),
        steps=None,
        margins=None,
    ) -> LeafBounds:
        steps = (self.alpha_steps if steps is None else steps) if alpha else 0
        result = self._linear_bounds(
            graph,
            lower,
            upper,
            C,
            splits=splits or None,
            slopes=slopes,
            final=final,
            policy=self.policy,
            alpha_steps=steps,
            intermediate=intermediate,
            return_coefficients=True,
            margins=margins,
        )
        A = result.coefficients
        if A is not None:
            A = A.reshape(A.shape[0], A.shape[1], -1)
        return LeafBounds(
            lower=result.lower,
            A=A,
            c=result.constant,
            infeasible=result.infeasible,
            slopes=result.slopes,  # always: the certificate checker replays these slopes
            intermediate=result.intermediate or None,
            relu_coefficients=result.relu_coefficients or None,
        )


def make_bounder(names: tuple[str, ...], alpha_steps: int) -> Bounder:
    """The best available bounder: the linear domain if present, else a domain of ``names``.

    Raises:
        ProverError: when no usable domain is available.
    """
    try:
        api = importlib.import_module("domains.linear.api")
    except ImportError:
        api = None
    if api is not None and hasattr(api, "linear_bounds"):
        return LinearBounder("crown", alpha_steps)
    for name in ("crown", "deeppoly", *reversed(names)):
        try:
            return DomainBounder(name)
        except ProverError:
            continue
    raise ProverError("branch and bound needs a bound-propagation domain; none is available")


def relu_inputs(graph: Graph) -> list[str]:
    """Names of the values that ReLU nodes read (the pre-activations), in graph order."""
    return [node.inputs[0] for node in graph.nodes if isinstance(node.op, ops.Relu)]


@dataclass(frozen=True)
class Rows:
    """The unsafe polytopes stacked into one ``C`` and ``d``, with each polytope's rows."""

    C: torch.Tensor
    d: torch.Tensor
    spans: tuple[tuple[int, int], ...]

    @staticmethod
    def stack(polytopes: tuple[Polytope, ...], n_outputs: int) -> Rows:
        """Stack ``polytopes`` (each ``C`` must have ``n_outputs`` columns)."""
        spans, start = [], 0
        for p in polytopes:
            if p.C.shape[1] != n_outputs:
                raise ProverError(
                    f"unsafe polytope has {p.C.shape[1]} columns; model has {n_outputs} outputs"
                )
            spans.append((start, start + p.C.shape[0]))
            start += p.C.shape[0]
        C = torch.from_numpy(np.concatenate([p.C for p in polytopes]).astype(np.float64))
        d = torch.from_numpy(np.concatenate([p.d for p in polytopes]).astype(np.float64))
        return Rows(C, d, tuple(spans))

    def margins(self) -> Margins:
        """The slope-optimisation objective that matches :func:`close_mask`."""
        return Margins(self.d, self.spans)


def close_mask(lower: torch.Tensor, rows: Rows) -> tuple[torch.Tensor, torch.Tensor]:
    """Which polytopes each leaf excludes, and by which row.

    Args:
        lower: ``(B, m)`` lower bounds of ``C y``.
        rows: the stacked polytopes.

    Returns:
        ``(excluded, row)``: ``(B, P)`` bool, and ``(B, P)`` the first excluding row index
        (within its polytope; meaningless where not excluded). NaN and infinite bounds
        never exclude anything.
    """
    proof = torch.isfinite(lower) & (lower > rows.d)
    excluded, row = [], []
    for start, end in rows.spans:
        part = proof[:, start:end]
        excluded.append(part.any(dim=1))
        row.append(part.to(torch.int8).argmax(dim=1))
    return torch.stack(excluded, dim=1), torch.stack(row, dim=1)


def margins(lower: torch.Tensor, rows: Rows) -> torch.Tensor:
    """``(B, P)``: per polytope, the best ``lower - d`` over its rows (NaN counts as -inf)."""
    gap = torch.nan_to_num(lower - rows.d, nan=-torch.inf)
    return torch.stack([gap[:, s:e].max(dim=1).values for s, e in rows.spans], dim=1)


def row_weights(lower: torch.Tensor, rows: Rows) -> torch.Tensor:
    """``(B, m)``: 1 on each open polytope's most promising row (largest ``lower - d``), 0
    elsewhere (rows of polytopes already excluded, and the other rows); for branching."""
    gap = torch.nan_to_num(lower - rows.d, nan=-torch.inf)
    proof = torch.isfinite(lower) & (lower > rows.d)
    weights = torch.zeros_like(lower)
    index = torch.arange(lower.shape[0])
    for start, end in rows.spans:
        open_ = ~proof[:, start:end].any(dim=1)
        best = gap[:, start:end].argmax(dim=1) + start
        weights[index, best] = open_.to(lower.dtype)
    return weights


def candidates(
    lower: torch.Tensor, upper: torch.Tensor, bounds: LeafBounds, rows: Rows
) -> torch.Tensor:
    """Points worth evaluating in each open leaf: ``(B, k, n_in)`` (flat inputs).

    The center of the box, and per polytope the box corner minimising the linear lower
    bound ``A x + c`` of its tightest row (the row closest to excluding it) and of the
    sum of its rows: where the relaxation thinks the polytope is reachable.
    """
    points = [(lower + upper) / 2]
    if bounds.A is not None:
        A = bounds.A
        gap = torch.nan_to_num(bounds.lower - rows.d, nan=-torch.inf)
        for start, end in rows.spans:
            tight = gap[:, start:end].argmax(dim=1) + start
            a_tight = A[torch.arange(A.shape[0]), tight]
            points.append(torch.where(a_tight > 0, lower, upper))
            if end - start > 1:
                a_sum = A[:, start:end].sum(dim=1)
                points.append(torch.where(a_sum > 0, lower, upper))
    return torch.stack(points, dim=1)
