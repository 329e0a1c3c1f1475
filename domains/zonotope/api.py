"""Zonotope (DeepZ) bound propagation: the ``zonotope`` domain's entry points.

See :mod:`domains` for the contract of :func:`bound_outputs` and :func:`bound_linear`.
``bound_linear`` applies ``C`` to the output zonotope before concretizing, which keeps the
correlation between outputs (tighter than combining per-output bounds).
"""

from __future__ import annotations

import torch

from domains import Domain
from domains.interval.api import NanGuard, check_box
from domains.interval.element import Interval
from domains.interval.transfer import TRANSFER as INTERVAL
from domains.rounding import center_radius, dot_error, down, linear_lower_bound, up, upper_sum
from domains.zonotope.element import Zonotope
from domains.zonotope.transfer import TRANSFER
from prover.ir.graph import Graph
from prover.ir.interpreter import interpret


def propagate(
    graph: Graph, lower: torch.Tensor, upper: torch.Tensor, *, interval_hints: bool = True
) -> Zonotope:
    """The output zonotope of ``graph`` over each box (batch expanded, NaN-guarded).

    A batch row whose computation met a NaN anywhere gets a NaN center (unknown). With
    ``interval_hints`` the interval domain runs first and every value's concrete bounds
    (used by the ReLU/sigmoid/... relaxations and the output bounds) are intersected with
    the interval bounds: never looser than either domain alone (a reduced product).
    """
    check_box(graph, lower, upper)
    guard = NanGuard(lower.shape[0], lower.device)
    hints = {}
    if interval_hints:
        hints = interpret(graph, INTERVAL, {graph.input_name: Interval(lower, upper)}, keep=True)

    def on_value(name: str, value: Zonotope) -> Zonotope | None:
        # A NaN generator makes the (cached) radius NaN, so checking it covers generators.
        guard.see(value.center, value.radius())
        hint = hints.get(name)
        if hint is None:
            return None
        guard.see(hint.lower, hint.upper)
        return value.with_hints(hint.lower, hint.upper)

    out = interpret(
        graph, TRANSFER, {graph.input_name: Zonotope.from_box(lower, upper)}, on_value=on_value
    )
    batch = lower.shape[0]
    shape = (batch,) + out.shape
    hint = hints.get(graph.output)
    return Zonotope(
        guard.poison(out.center.expand(shape)),
        out.generators.expand((batch, out.n_generators) + out.shape),
        out.box.expand(shape),
        out.noise,
        None if hint is None else hint.lower.expand(shape),
        None if hint is None else hint.upper.expand(shape),
    )


def bound_outputs(
    graph: Graph, lower: torch.Tensor, upper: torch.Tensor, *, interval_hints: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound bounds ``(B, *output_shape)`` of the outputs over each input box."""
    return propagate(graph, lower, upper, interval_hints=interval_hints).bounds()


def bound_linear(
    graph: Graph,
    lower: torch.Tensor,
    upper: torch.Tensor,
    C: torch.Tensor,
    *,
    interval_hints: bool = True,
) -> torch.Tensor:
    """Sound lower bounds ``(B, m)`` of ``C @ flatten(y)`` over each input box.

    Soundness: ``C y`` over the output zonotope is the zonotope with center ``C c``,
    generators ``C G_k`` and box ``|C| box``; its minimum is ``C c - sum_k |C G_k| - |C|
    box``. The rounding of all the products is at most ``gamma_n |C| (|c| + sum_k |G_k| +
    box)`` (domains.rounding.dot_error), subtracted as well.
    """
    z = propagate(graph, lower, upper, interval_hints=interval_hints)
    batch = z.batch
    c = z.center.reshape(batch, -1)
    gens = z.generators.reshape(batch, z.n_generators, -1)
    box = z.box.reshape(batch, -1)
    mag = z.magnitude().reshape(batch, -1)
    C = torch.as_tensor(C, dtype=c.dtype, device=c.device)
    Ca = C.abs()
    if C.dim() == 2:
        value, out_gens = c @ C.T, gens @ C.T
        out_box, out_mag = box @ Ca.T, mag @ Ca.T
    else:
        value = torch.einsum("bmn,bn->bm", C, c)
        out_gens = torch.einsum("bmn,bkn->bkm", C, gens)
        out_box = torch.einsum("bmn,bn->bm", Ca, box)
        out_mag = torch.einsum("bmn,bn->bm", Ca, mag)
    radius = upper_sum(out_gens.abs(), 1) if z.n_generators else torch.zeros_like(value)
    err = dot_error(out_mag, C.shape[-1] + 2)
    result = down(value - up(up(radius + out_box) + err))
    if z.hint_lower is not None and z.hint_upper is not None:
        # The interval enclosure gives another sound bound; keep the better one (NaN stays).
        hint_c, hint_r = center_radius(
            z.hint_lower.reshape(batch, -1), z.hint_upper.reshape(batch, -1)
        )
        result = torch.maximum(result, linear_lower_bound(C, hint_c, hint_r))
    return result


DOMAINS = {
    "zonotope": Domain(
        name="zonotope",
        table=TRANSFER,
        bound_outputs=bound_outputs,
        bound_linear=bound_linear,
        description="DeepZ zonotopes with floating-point error boxes",
    )
}
