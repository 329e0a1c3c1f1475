"""Drop ops that compute the identity: the remains of ONNX Identity/Dropout/Cast chains.

Dropped: ``Reshape`` to the input's own shape, ``Transpose`` by the identity permutation,
``Slice`` that keeps every element in order, ``Pad`` by zero everywhere, ``MulConst`` by
ones and ``DivConst`` by ones that do not broadcast the input, ``AddConst`` of zeros.
Readers of a dropped node read its input instead.

Equivalence: exact for every finite or infinite input (``x * 1 == x / 1 == x``; ``x + 0``
only turns ``-0.0`` into ``+0.0``, which compares equal).
"""

from __future__ import annotations

import numpy as np

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.ir.passes.common import rewrite

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = True


def is_identity(node: Node, graph: Graph) -> bool:
    """Whether ``node`` returns its (single) input unchanged."""
    op = node.op
    if len(node.inputs) != 1:
        return False
    shape = graph.shapes[node.inputs[0]]
    if graph.shapes[node.name] != shape:
        return False
    if isinstance(op, ops.Reshape):
        return True
    if isinstance(op, ops.Transpose):
        return list(op.perm) == list(range(len(op.perm)))
    if isinstance(op, ops.Slice):
        return all(
            step == 1 and start == 0 and (stop is None or stop >= shape[axis])
            for axis, start, stop, step in zip(op.axes, op.starts, op.stops, op.steps, strict=True)
        )
    if isinstance(op, ops.Pad):
        return not any(op.pads)
    if isinstance(op, (ops.MulConst, ops.DivConst)):
        return bool(np.all(op.value == 1.0))
    if isinstance(op, ops.AddConst):
        return bool(np.all(op.value == 0.0))
    return False


def run(graph: Graph) -> Graph:
    """Remove identity nodes (see the module docstring)."""
    inputs = {name for name, _ in graph.inputs}
    alias: dict[str, str] = {}
    for node in graph.nodes:
        if not is_identity(node, graph):
            continue
        source = alias.get(node.inputs[0], node.inputs[0])
        if node.name == graph.output and source in inputs:
            continue  # the graph output must be computed by a node
        alias[node.name] = node.inputs[0]
    return rewrite(graph, removed=set(alias), alias=alias)
