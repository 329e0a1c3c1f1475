"""Merge a Reshape that feeds only another Reshape into it.

Equivalence: exact. Reshapes only reinterpret the row-major order of the elements, so
``Reshape(b)(Reshape(a)(x)) == Reshape(b)(x)``.
"""

from __future__ import annotations

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.ir.passes.common import merged_source, rewrite, sole_consumer

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = True


def run(graph: Graph) -> Graph:
    """Fuse chains of Reshapes (see the module docstring)."""
    nodes = {node.name: node for node in graph.nodes}
    only = sole_consumer(graph)
    replaced: dict[str, Node] = {}
    removed: set[str] = set()
    for node in graph.nodes:
        if not isinstance(node.op, ops.Reshape) or node.name in removed:
            continue
        user = only.get(node.name)
        if user is None or not isinstance(nodes[user].op, ops.Reshape):
            continue
        if user in replaced or node.name in replaced:
            continue
        later = nodes[user]
        replaced[user] = Node(later.name, later.op, node.inputs, merged_source(node, later))
        removed.add(node.name)
    return rewrite(graph, replaced, removed)
