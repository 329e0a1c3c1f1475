"""Merge ``Neg`` into neighbouring linear ops, where the result is exact.

Rewrites (the first node's output read only by the second):
    * ``Neg`` then ``Neg``: both dropped.
    * ``Neg`` then ``MulConst(v)``, or ``MulConst(v)`` then ``Neg``: ``MulConst(-v)``.
    * ``Gemm``/``Conv`` then ``Neg``: the layer with negated weight and bias.
    * ``Neg`` then ``Gemm``: the Gemm with negated weight.

Equivalence: exact in floating point (negation is exact, and rounding is symmetric:
``fl(-a * b) == -fl(a * b)``, ``fl(sum(-a_i b_i)) == -fl(sum(a_i b_i))``).
Subtraction of a constant is already ``AddConst(-c)`` from import.
"""

from __future__ import annotations

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.ir.passes.common import merged_source, rewrite, sole_consumer

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = True


def _negated(op: ops.Op) -> ops.Op:
    if isinstance(op, ops.MulConst):
        return ops.MulConst(ops.frozen_array(-op.value))
    if isinstance(op, ops.Gemm):
        return ops.Gemm(ops.frozen_array(-op.weight), ops.frozen_array(-op.bias))
    assert isinstance(op, ops.Conv)
    return ops.Conv(
        ops.frozen_array(-op.weight),
        ops.frozen_array(-op.bias),
        op.strides,
        op.pads,
        op.dilations,
        op.group,
    )


def _merge(first: Node, second: Node) -> ops.Op | None | str:
    a, b = first.op, second.op
    if isinstance(a, ops.Neg) and isinstance(b, ops.Neg):
        return "cancel"
    if isinstance(a, ops.Neg) and isinstance(b, ops.MulConst):
        return _negated(b)
    if isinstance(b, ops.Neg) and isinstance(a, (ops.MulConst, ops.Gemm, ops.Conv)):
        return _negated(a)
    if isinstance(a, ops.Neg) and isinstance(b, ops.Gemm):
        return ops.Gemm(ops.frozen_array(-b.weight), b.bias)
    return None


def run(graph: Graph) -> Graph:
    """Merge negations (see the module docstring)."""
    nodes = {node.name: node for node in graph.nodes}
    only = sole_consumer(graph)
    replaced: dict[str, Node] = {}
    removed: set[str] = set()
    alias: dict[str, str] = {}
    touched: set[str] = set()
    for node in graph.nodes:
        user = only.get(node.name)
        if user is None or len(nodes[user].inputs) != 1:
            continue
        if {node.name, user} & touched:
            continue
        second = nodes[user]
        merged = _merge(node, second)
        if merged is None:
            continue
        touched.update((node.name, user))
        if merged == "cancel":
            if second.name == graph.output:
                touched.discard(user)
                continue
            removed.update((node.name, user))
            alias[user] = node.inputs[0]
            continue
        replaced[user] = Node(second.name, merged, node.inputs, merged_source(node, second))
        removed.add(node.name)
    return rewrite(graph, replaced, removed, alias)
