"""Public entry points of the linear (DeepPoly / CROWN / alpha-CROWN) domain.

``linear_bounds`` is the rich entry point for branch and bound (split constraints,
slopes, warm starts, intermediate bounds, coefficients); ``bound_outputs`` and
``bound_linear`` implement the common ``domains.Domain`` contract. ``deeppoly`` and
``crown`` are the same back-substitution with the same adaptive ReLU lower slopes (1 where
``u > -l``, else 0; for ReLU networks the two methods coincide); ``alpha-crown`` optimises
the slopes of the final back-substitution.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping
from dataclasses import fields

import numpy as np
import torch

from domains import Domain
from domains.linear.alpha import Margins, optimise
from domains.linear.element import LinearBoundResult
from domains.linear.engine import ROW_CHUNK_ELEMENTS, Analysis
from domains.linear.floats import down, graph_gamma, inflate, rowdot
from domains.linear.transfer import NEEDS_BOUNDS, TRANSFER
from prover.errors import ProverError, ShapeError
from prover.ir.graph import Graph

POLICIES = ("deeppoly", "crown")
DEFAULT_ALPHA_STEPS = 20


def _as_tensor(value, like: torch.Tensor | None = None) -> torch.Tensor:
    # np.array copies: read-only numpy arrays (box bounds) must not alias a tensor
    tensor = value if torch.is_tensor(value) else torch.from_numpy(np.array(value))
    device = like.device if like is not None else tensor.device
    return tensor.to(dtype=torch.float64, device=device)


def _coefficients(graph: Graph, C, batch: int, like: torch.Tensor) -> torch.Tensor:
    C = _as_tensor(C, like)
    n_out = graph.output_size
    if C.dim() == 2:
        C = C.unsqueeze(0)
    if C.dim() != 3 or C.shape[2] != n_out or C.shape[0] not in (1, batch):
        raise ShapeError(
            "C", "linear domain", f"(m, {n_out}) or ({batch}, m, {n_out})", tuple(C.shape)
        )
    return C.reshape(C.shape[0], C.shape[1], *graph.output_shape)


def _chunk(value, start: int, stop: int):
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(_chunk(v, start, stop) for v in value)
    if isinstance(value, Mapping):
        return {k: _chunk(v, start, stop) for k, v in value.items()}
    value = torch.as_tensor(value)
    return value if value.shape[0] == 1 else value[start:stop]


def linear_bounds(
    graph: Graph,
    lower,
    upper,
    C,
    *,
    splits: Mapping[str, torch.Tensor] | None = None,
    slopes: Mapping[str, torch.Tensor] | None = None,
    policy: str = "crown",
    alpha_steps: int = 0,
    alpha_lr: float = 0.1,
    intermediate: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    return_coefficients: bool = False,
    beta: bool = False,
    betas: Mapping[str, torch.Tensor] | None = None,
    final: Collection[str] = (),
    margins: Margins | None = None,
) -> LinearBoundResult:
    """Sound lower bounds of ``C @ flatten(y)`` over a batch of boxes, by back-substitution.

    Args:
        graph: the graph (single input).
        lower, upper: ``(B, *input_shape)`` box corners (float64 tensors or arrays).
        C: ``(m, n_out)`` or ``(B, m, n_out)``.
        splits: ReLU *input* value name -> int8 ``(B, n)``: -1 forced inactive
            (pre-activation <= 0), 0 free, +1 forced active (>= 0).
        slopes: ReLU input name -> ``(B, n)`` lower slopes in [0, 1] for the final
            back-substitution (warm start for ``alpha_steps > 0``); default heuristic.
        policy: ``"crown"`` or ``"deeppoly"`` (same adaptive slopes, see module doc).
        alpha_steps: Adam steps optimising the slopes (alpha-CROWN); 0 disables.
        alpha_lr: Adam learning rate.
        intermediate: value name -> ``(l, u)`` bounds valid on the region (e.g. the
            parent node's ``result.intermediate``), intersected with the computed ones.
        return_coefficients: also return ``A`` and ``c`` with ``C y(x) >= A x + c``.
        beta: with ``alpha_steps > 0``, also optimise Lagrange multipliers of the split
            constraints (beta-CROWN), one per (box, row of C, split neuron).
        betas: multipliers to use (or warm-start from): ReLU input name -> ``(B, m, n)``
            (``result.betas`` of a previous call with the same ``C``).
        final: names of ``intermediate`` values whose given bounds are used as they are
            (no back-substitution to tighten them; e.g. the bounds a previous call
            computed on the same region). Sound: the given bounds hold on the region.
        margins: with ``alpha_steps > 0``, optimise the slopes for the closing rule of
            these polytopes (each one's best row) instead of the sum of the rows' bounds.

    Returns:
        A :class:`LinearBoundResult`.
    """
    if policy not in POLICIES:
        raise ProverError(f"unknown slope policy {policy!r}; choose one of {', '.join(POLICIES)}")
    lower = _as_tensor(lower)
    upper = _as_tensor(upper, lower)
    if lower.dim() == len(graph.input_shape):
        lower, upper = lower.unsqueeze(0), upper.unsqueeze(0)
    batch = lower.shape[0]
    lam = _coefficients(graph, C, batch, lower)
    widest = max(math.prod(s) for s in graph.shapes.values())
    rows = max(
        [lam.shape[1]]
        + [
            2 * math.prod(graph.shapes[n.inputs[0]])
            for n in graph.nodes
            if isinstance(n.op, NEEDS_BOUNDS)
        ]
    )
    size = max(1, ROW_CHUNK_ELEMENTS // max(1, rows * widest))
    pieces = [
        _one(
            graph,
            lower[start : start + size],
            upper[start : start + size],
            _chunk(lam, start, start + size),
            splits=_chunk(splits, start, start + size),
            slopes=_chunk(slopes, start, start + size),
            alpha_steps=alpha_steps,
            alpha_lr=alpha_lr,
            intermediate=_chunk(intermediate, start, start + size),
            coeffs=return_coefficients,
            beta=(beta, _chunk(betas, start, start + size)),
            final=frozenset(final),
            margins=margins,
        )
        for start in range(0, batch, size)
    ]
    return pieces[0] if len(pieces) == 1 else _concat(pieces)


def _concat(pieces: list):
    """Concatenate the results of consecutive chunks of a batch along the batch axis."""
    first = pieces[0]
    if first is None:
        return None
    if torch.is_tensor(first):
        return torch.cat(pieces)
    if isinstance(first, tuple):
        return tuple(_concat(list(parts)) for parts in zip(*pieces, strict=True))
    if isinstance(first, dict):
        return {k: _concat([p[k] for p in pieces]) for k in first}
    return LinearBoundResult(
        **{f.name: _concat([getattr(p, f.name) for p in pieces]) for f in fields(first)}
    )


def _one(
    graph,
    lower,
    upper,
    lam,
    *,
    splits,
    slopes,
    alpha_steps,
    alpha_lr,
    intermediate,
    coeffs,
    beta,
    final,
    margins,
):
    analysis = Analysis(graph, lower, upper, splits=splits, intermediate=intermediate, final=final)
    batch = analysis.batch
    use_beta, given_betas = beta
    mults = {}
    if alpha_steps > 0:
        bound, used, mults = optimise(
            analysis,
            graph.output,
            lam,
            steps=alpha_steps,
            lr=alpha_lr,
            init=slopes,
            beta=use_beta,
            init_betas=given_betas,
            margins=margins,
        )
    else:
        used = analysis.heuristic_slopes()
        for name, value in (slopes or {}).items():
            if name in used:
                used[name] = (
                    _as_tensor(value, lower)
                    .reshape(-1, used[name].shape[1])
                    .expand_as(used[name])
                    .clamp(0.0, 1.0)
                )
        analysis.set_slopes(used)
        if given_betas:
            m, batch_size = lam.shape[1], analysis.batch
            mults = {
                k: _as_tensor(v, lower)
                .reshape(-1, m, analysis.splits[k][0].numel())
                .expand(batch_size, m, -1)
                .clamp(min=0.0)
                for k, v in given_betas.items()
                if k in analysis.splits
            }
        bound = None
    A = c = None
    with torch.no_grad():
        relu_lams: dict[str, torch.Tensor] = {}
        if coeffs:
            bound, A, c = analysis.lower_bound(
                graph.output, lam, coefficients=True, betas=mults, record=relu_lams
            )
            relu_lams = {k: v.expand(batch, *v.shape[1:]) for k, v in relu_lams.items()}
        elif bound is None:
            bound = analysis.lower_bound(graph.output, lam, betas=mults)
        bound = bound.detach()
        nan = torch.full_like(bound, float("nan"))
        inf = torch.full_like(bound, float("inf"))
        infeasible = analysis.infeasible & ~analysis.nonfinite
        # +inf can only come from an overflow (then the error bound is inf or NaN too);
        # never let it pass as a proof: only an infeasible region proves everything.
        bad = analysis.nonfinite.unsqueeze(1) | (bound == float("inf"))
        bound = torch.where(bad, nan, bound)
        bound = torch.where(infeasible.unsqueeze(1), inf, bound)
        boxes = {
            name: tuple(t.expand(batch, *t.shape[1:]) for t in analysis.box(name))
            for name in analysis.needs_bounds
        }
        out_box = tuple(t.expand(batch, *t.shape[1:]) for t in analysis.box(graph.output))
    result = LinearBoundResult(
        lower=bound,
        infeasible=infeasible,
        slopes={k: v.detach() for k, v in used.items()},
        betas={k: v.detach() for k, v in mults.items()},
        intermediate=boxes,
        coefficients=A,
        constant=c,
        relu_coefficients=relu_lams,
        output=out_box,
    )
    return result


def _combine(C: torch.Tensor, box, gamma: float) -> torch.Tensor:
    """Rigorous lower bound of ``C y`` over the box ``[l, u]`` of ``y`` (batch of boxes).

    Soundness: ``min C y = C+ l + C- u`` exactly; the computed sums are within
    ``gamma (|C| . max(|l|, |u|))`` (Higham 3.4), which is subtracted, inflated.
    """
    lb, ub = (t.reshape(t.shape[0], -1) for t in box)
    C = C.reshape(C.shape[0], C.shape[1], -1)
    value = rowdot(C.clamp(min=0), lb) + rowdot(C.clamp(max=0), ub)
    err = gamma * rowdot(C.abs(), torch.maximum(lb.abs(), ub.abs()))
    return down(value - inflate(err, gamma))


def bound_linear(graph: Graph, lower, upper, C, *, policy: str = "crown", alpha_steps: int = 0):
    """``(B, m)`` lower bounds of ``C @ flatten(y)`` (the ``Domain`` contract).

    Back-substitutes from ``C`` directly, and takes the larger of that and ``C`` applied
    to the interval box of ``y`` (both are sound).
    """
    result = linear_bounds(graph, lower, upper, C, policy=policy, alpha_steps=alpha_steps)
    box = result.output
    lam = _coefficients(graph, C, result.lower.shape[0], result.lower)
    sizes = [math.prod(s) for s in graph.shapes.values()]
    combined = _combine(lam, box, graph_gamma(sizes, len(graph.nodes)))
    return torch.where(
        torch.isnan(result.lower), result.lower, torch.maximum(result.lower, combined)
    )


def bound_outputs(graph: Graph, lower, upper, *, policy: str = "crown", alpha_steps: int = 0):
    """``(out_lower, out_upper)`` of shape ``(B, *output_shape)`` (the ``Domain`` contract).

    Back-substitutes from ``[I; -I]`` and intersects with the interval box of the output.
    """
    n = graph.output_size
    eye = torch.eye(n, dtype=torch.float64)
    result = linear_bounds(
        graph, lower, upper, torch.cat([eye, -eye]), policy=policy, alpha_steps=alpha_steps
    )
    box_l, box_u = result.output
    batch = result.lower.shape[0]
    lo = result.lower[:, :n].reshape(batch, *graph.output_shape)
    hi = -result.lower[:, n:].reshape(batch, *graph.output_shape)
    return torch.maximum(lo, box_l), torch.minimum(hi, box_u)


def _domain(name: str, alpha_steps: int, description: str) -> Domain:
    policy = "deeppoly" if name == "deeppoly" else "crown"
    return Domain(
        name=name,
        table=TRANSFER,
        bound_outputs=functools.partial(bound_outputs, policy=policy, alpha_steps=alpha_steps),
        bound_linear=functools.partial(bound_linear, policy=policy, alpha_steps=alpha_steps),
        description=description,
    )


DOMAINS = {
    "deeppoly": _domain("deeppoly", 0, "DeepPoly back-substitution (adaptive ReLU slopes)"),
    "crown": _domain("crown", 0, "CROWN back-substitution (adaptive ReLU slopes)"),
    "alpha-crown": _domain(
        "alpha-crown", DEFAULT_ALPHA_STEPS, "CROWN with lower slopes optimised by Adam"
    ),
}
