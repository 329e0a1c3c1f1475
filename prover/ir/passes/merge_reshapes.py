"""Merge a Reshape that feeds only another Reshape into it.

Equivalence: exact. Reshapes only reinterpret the row-major order of the elements, so
``Reshape(b)(Reshape(a)(x)) == Reshape(b)(x)``.
"""

from __future__ import annotations

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.ir.passes.common import fuse_into_sole_consumer

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = True


def run(graph: Graph) -> Graph:
    """Fuse chains of Reshapes (see the module docstring)."""

    def fuse(node: Node, later: Node) -> ops.Op | None:
        both = isinstance(node.op, ops.Reshape) and isinstance(later.op, ops.Reshape)
        return later.op if both else None

    return fuse_into_sole_consumer(graph, fuse)
