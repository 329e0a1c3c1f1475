"""Fold constant subgraphs, and constant operands of binary ops into ``*Const`` ops.

1. A node whose inputs are all ``ConstantOf`` nodes is evaluated in float64 numpy and
   replaced by a ``ConstantOf`` of the result (ops without a numpy rule here are left).
2. ``Add/Sub/Mul/Div`` with one ``ConstantOf`` operand that broadcasts to the other's
   shape become ``AddConst`` (``x - c`` as ``AddConst(-c)``), ``MulConst`` or ``DivConst``.

Equivalence: (1) gives the value the concrete semantics computes in float64 for the
subgraph (which does not depend on the input); (2) is exact: negating a constant is
exact, and ``x + c``, ``x * c``, ``x / c`` are the same operations.
"""

from __future__ import annotations

import numpy as np

from prover.ir import ops
from prover.ir.graph import Graph, Node

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = False


def _slice(op: ops.Slice, x: np.ndarray) -> np.ndarray:
    return x[op.slices(x.ndim)]


def _pad(op: ops.Pad, x: np.ndarray) -> np.ndarray:
    rank = x.ndim
    widths = [(op.pads[i], op.pads[i + rank]) for i in range(rank)]
    return np.pad(x, widths, constant_values=op.value)


def _softmax(op: ops.Softmax, x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=op.axis, keepdims=True))
    return e / e.sum(axis=op.axis, keepdims=True)


#: numpy rules ``rule(op, *arrays)`` on unbatched constant arrays.
NUMPY = {
    ops.Gemm: lambda op, x: x @ op.weight.T + op.bias,
    ops.AddConst: lambda op, x: x + op.value,
    ops.MulConst: lambda op, x: x * op.value,
    ops.DivConst: lambda op, x: x / op.value,
    ops.Neg: lambda op, x: -x,
    ops.Add: lambda op, a, b: a + b,
    ops.Sub: lambda op, a, b: a - b,
    ops.Mul: lambda op, a, b: a * b,
    ops.Div: lambda op, a, b: a / b,
    ops.Relu: lambda op, x: np.maximum(x, 0.0),
    ops.LeakyRelu: lambda op, x: np.where(x >= 0, x, op.alpha * x),
    ops.Sigmoid: lambda op, x: 1.0 / (1.0 + np.exp(-x)),
    ops.Tanh: lambda op, x: np.tanh(x),
    ops.Exp: lambda op, x: np.exp(x),
    ops.Log: lambda op, x: np.log(x),
    ops.Sqrt: lambda op, x: np.sqrt(x),
    ops.Abs: lambda op, x: np.abs(x),
    ops.Clip: lambda op, x: np.clip(
        x, -np.inf if op.min is None else op.min, np.inf if op.max is None else op.max
    ),
    ops.Softmax: _softmax,
    ops.ReduceSum: lambda op, x: x.sum(axis=op.axes, keepdims=op.keepdims),
    ops.ReduceMean: lambda op, x: x.mean(axis=op.axes, keepdims=op.keepdims),
    ops.Reshape: lambda op, x: x.reshape(op.shape),
    ops.Transpose: lambda op, x: x.transpose(op.perm),
    ops.Concat: lambda op, *xs: np.concatenate(xs, axis=op.axis),
    ops.Slice: _slice,
    ops.Gather: lambda op, x: np.take(x, op.indices.astype(np.int64), axis=op.axis),
    ops.Pad: _pad,
}

_WITH_CONST = {ops.Add: ops.AddConst, ops.Mul: ops.MulConst}


def _binary(node: Node, graph: Graph, constants: dict[str, np.ndarray]) -> list[Node] | None:
    kind = type(node.op)
    if kind not in (ops.Add, ops.Sub, ops.Mul, ops.Div):
        return None
    a, b = node.inputs
    if (a in constants) == (b in constants):
        return None
    dyn, const = (a, b) if b in constants else (b, a)
    value = constants[const]
    shape = graph.shapes[dyn]
    if np.broadcast_shapes(shape, value.shape) != shape:
        return None
    frozen = ops.frozen_array(value)
    if kind in _WITH_CONST:
        return [Node(node.name, _WITH_CONST[kind](frozen), (dyn,), node.source)]
    if kind is ops.Sub and dyn == a:
        return [Node(node.name, ops.AddConst(ops.frozen_array(-value)), (dyn,), node.source)]
    if kind is ops.Sub:
        neg = Node(node.name + ":neg", ops.Neg(), (dyn,), node.source)
        return [neg, Node(node.name, ops.AddConst(frozen), (neg.name,), node.source)]
    if kind is ops.Div and dyn == a and np.all(value != 0):
        return [Node(node.name, ops.DivConst(frozen), (dyn,), node.source)]
    return None


def run(graph: Graph) -> Graph:
    """Fold constant subgraphs and constant operands (see the module docstring)."""
    constants: dict[str, np.ndarray] = {}
    nodes: list[Node] = []
    names = {node.name for node in graph.nodes} | {name for name, _ in graph.inputs}
    changed = False
    for node in graph.nodes:
        if isinstance(node.op, ops.ConstantOf):
            constants[node.name] = node.op.value
            nodes.append(node)
            continue
        rule = NUMPY.get(type(node.op))
        if node.inputs and rule is not None and all(v in constants for v in node.inputs):
            with np.errstate(all="ignore"):
                value = np.asarray(rule(node.op, *(constants[v] for v in node.inputs)), np.float64)
            if np.all(np.isfinite(value)):
                constants[node.name] = value
                op = ops.ConstantOf(ops.frozen_array(value))
                nodes.append(Node(node.name, op, (), node.source))
                changed = True
                continue
        replacement = _binary(node, graph, constants)
        if replacement is not None and (len(replacement) == 1 or replacement[0].name not in names):
            nodes.extend(replacement)
            changed = True
            continue
        nodes.append(node)
    if not changed:
        return graph
    return graph.replace(tuple(nodes))
