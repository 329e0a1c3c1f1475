"""Abstract domains that bound a graph's outputs over an input box.

Each domain is a package (``interval``, ``zonotope``, ``linear``) with ``element.py`` (the
abstract value), ``transfer.py`` (one function per op, ending in a ``TRANSFER`` table) and
an ``api.py`` exposing two functions with one contract:

``bound_outputs(graph, lower, upper) -> (out_lower, out_upper)``
    ``lower``/``upper``: float64 torch tensors ``(B, *input_shape)``, a batch of boxes.
    Returns ``(B, *output_shape)`` tensors, sound over the reals for every input in
    each box (floating-point error accounted for).

``bound_linear(graph, lower, upper, C) -> lower_bounds``
    ``C``: ``(m, n_out)`` or ``(B, m, n_out)``; returns ``(B, m)`` sound lower bounds of
    ``C @ flatten(y)`` over each box (computed directly on ``C y`` where the domain can).

A result may hold NaN or Inf; callers must treat that as "nothing proved".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from prover.errors import ProverError
from prover.ir.interpreter import Table


@dataclass(frozen=True)
class Domain:
    """A registered domain: its name, its transfer table and its two bound functions."""

    name: str
    table: Table
    bound_outputs: Callable
    bound_linear: Callable
    description: str = ""


#: name -> (module path, attribute holding the Domain object)
_REGISTRY = {
    "interval": "domains.interval.api",
    "zonotope": "domains.zonotope.api",
    "deeppoly": "domains.linear.api",
    "crown": "domains.linear.api",
    "alpha-crown": "domains.linear.api",
}


def get_domain(name: str) -> Domain:
    """Return the domain called ``name`` (``DOMAINS`` attribute of its api module)."""
    if name not in _REGISTRY:
        raise ProverError(f"unknown domain {name!r}; choose one of {', '.join(_REGISTRY)}")
    try:
        module = importlib.import_module(_REGISTRY[name])
    except ImportError as exc:
        raise ProverError(f"domain {name!r} is not available: {exc}") from None
    domains = getattr(module, "DOMAINS", {})
    if name not in domains:
        raise ProverError(f"domain {name!r} is not available in {_REGISTRY[name]}")
    return domains[name]
