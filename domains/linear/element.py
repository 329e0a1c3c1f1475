"""The abstract value of the linear domain and the result of a bound computation.

The element is a linear function of the input that bounds a linear function of a value
from below over a region: ``lam . v(x) >= A . x + c`` for every ``x`` in the region,
with concrete bounds obtained by minimising ``A . x + c`` over the input box. The
engine (``domains.linear.engine``) builds it by back-substitution; this module holds
what callers get back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class LinearBoundResult:
    """Lower bounds of ``C y`` over a batch of regions, with what produced them.

    Attributes:
        lower: ``(B, m)`` sound lower bounds of ``C @ flatten(y)``; ``+inf`` for an
            infeasible region (split constraints contradict: the region is empty), NaN
            where a computation overflowed (treat as unknown).
        infeasible: ``(B,)`` bool, the regions shown empty by the split constraints.
        slopes: ReLU input value name -> ``(B, n)`` lower slopes used in the final
            back-substitution (intermediate bounds always use the adaptive heuristic).
        betas: ReLU input name -> ``(B, m, n)`` non-negative multipliers of the split
            constraints used in the final back-substitution (empty without beta).
        intermediate: value name -> ``(l, u)`` ``(B, *shape)`` bounds of every
            nonlinear op's input (valid on the region; reusable for sub-regions).
        coefficients: ``(B, m, n_in)`` ``A`` with ``C y(x) >= A x + constant`` on the
            region, when asked for (None otherwise).
        constant: ``(B, m)`` the matching constant (rounding already accounted for).
        relu_coefficients: with ``coefficients``, ReLU input name -> ``(B, m, n)`` the
            coefficients of that ReLU's output in the final back-substitution (what a
            branching heuristic needs to estimate a split's effect; not evidence).
        output: ``(l, u)`` ``(B, *output_shape)``, the interval box of the graph output
            the analysis computed (valid on the region).
    """

    lower: torch.Tensor
    infeasible: torch.Tensor
    slopes: dict[str, torch.Tensor] = field(default_factory=dict)
    betas: dict[str, torch.Tensor] = field(default_factory=dict)
    intermediate: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    coefficients: torch.Tensor | None = None
    constant: torch.Tensor | None = None
    relu_coefficients: dict[str, torch.Tensor] = field(default_factory=dict)
    output: tuple[torch.Tensor, torch.Tensor] | None = None
