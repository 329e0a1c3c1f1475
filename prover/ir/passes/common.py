"""Helpers shared by the rewrite passes: consumers and rebuilding a graph."""

from __future__ import annotations

from prover.ir.graph import Graph, Node


def sole_consumer(graph: Graph) -> dict[str, str]:
    """Map each value read by exactly one node (and not the graph output) to that node."""
    users = graph.consumers()
    return {
        name: readers[0]
        for name, readers in users.items()
        if len(readers) == 1 and name != graph.output
    }


def rewrite(
    graph: Graph,
    replaced: dict[str, Node] | None = None,
    removed: set[str] | None = None,
    alias: dict[str, str] | None = None,
) -> Graph:
    """Return ``graph`` with nodes replaced (by name), removed, and reads redirected.

    Args:
        graph: the graph to rewrite.
        replaced: new node for a name (keeps its position in the order).
        removed: names of nodes to drop.
        alias: value name -> the name to read instead (chains are followed).
    """
    replaced = replaced or {}
    removed = removed or set()
    alias = alias or {}
    if not replaced and not removed and not alias:
        return graph

    def resolve(name: str) -> str:
        seen = set()
        while name in alias and name not in seen:
            seen.add(name)
            name = alias[name]
        return name

    nodes = []
    for node in graph.nodes:
        if node.name in removed:
            continue
        node = replaced.get(node.name, node)
        inputs = tuple(resolve(v) for v in node.inputs)
        if inputs != node.inputs:
            node = Node(node.name, node.op, inputs, node.source)
        nodes.append(node)
    return graph.replace(tuple(nodes), resolve(graph.output))


def merged_source(*nodes: Node) -> str:
    """The source text of a node fused from ``nodes``."""
    return " + ".join(node.source or node.name for node in nodes)
