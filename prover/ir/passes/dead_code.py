"""Remove nodes whose values never reach the graph output.

Equivalence: exact. The output is computed by the same nodes from the same inputs; only
values nothing reads are dropped.
"""

from __future__ import annotations

from prover.ir.graph import Graph

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = True


def run(graph: Graph) -> Graph:
    """Drop every node that the output does not depend on."""
    needed = {graph.output}
    for node in reversed(graph.nodes):
        if node.name in needed:
            needed.update(node.inputs)
    if all(node.name in needed for node in graph.nodes):
        return graph
    return graph.replace(tuple(node for node in graph.nodes if node.name in needed))
