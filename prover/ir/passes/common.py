"""Helpers shared by the rewrite passes: consumers and rebuilding a graph."""

from __future__ import annotations

from collections.abc import Callable

from prover.ir import ops
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


def fuse_into_sole_consumer(graph: Graph, fuse: Callable[[Node, Node], ops.Op | None]) -> Graph:
    """Replace pairs ``producer -> its sole consumer`` by one node where ``fuse`` allows.

    ``fuse(producer, consumer)`` returns the op of the fused node (reading the producer's
    inputs, named as the consumer), or None to leave the pair alone. A node takes part
    in at most one fusion per call; chains are finished by the next round of
    :func:`prover.ir.passes.canonicalize`.
    """
    nodes = {node.name: node for node in graph.nodes}
    only = sole_consumer(graph)
    replaced: dict[str, Node] = {}
    removed: set[str] = set()
    for node in graph.nodes:
        user = only.get(node.name)
        if user is None or {node.name, user} & (replaced.keys() | removed):
            continue
        follower = nodes[user]
        op = fuse(node, follower)
        if op is None:
            continue
        replaced[user] = Node(follower.name, op, node.inputs, merged_source(node, follower))
        removed.add(node.name)
    return rewrite(graph, replaced, removed)
