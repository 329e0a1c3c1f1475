"""The immutable graph of the IR.

A :class:`Graph` is a topologically ordered tuple of :class:`Node` s, each computing one
value from named inputs. It is validated on construction: names are unique, every input
of a node is defined before the node, and every node's shape rule accepts its inputs'
shapes. A failure raises :class:`~prover.errors.ShapeError` or
:class:`~prover.errors.GraphError` naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from prover.errors import GraphError, InvalidWeightsError, ShapeError
from prover.ir.ops import Op, Shape, ShapeRuleError


@dataclass(frozen=True)
class Node:
    """One value of the graph: ``name = op(*inputs)``.

    Attributes:
        name: the value's unique name (from the source model when there is one).
        op: the op applied.
        inputs: names of graph inputs or earlier nodes.
        source: where it came from (e.g. "onnx node 'Gemm_3' (Gemm)"), for messages.
    """

    name: str
    op: Op
    inputs: tuple[str, ...]
    source: str = ""


@dataclass(frozen=True)
class ModelOrigin:
    """Where a graph came from, kept so counterexamples can be replayed independently.

    Attributes:
        onnx_bytes: a serialised ONNX model computing the same function (the original file
            for ONNX imports), run by ONNX Runtime to replay counterexamples.
        onnx_input_name: the ONNX graph input to feed.
        onnx_input_shape: the full ONNX input shape (with batch axis if it had one).
        onnx_input_dtype: numpy dtype name of the ONNX input ("float32", "float64").
        path: the file it was read from, if any.
        sha256: SHA-256 hex digest of the model file or bytes.
        kind: "onnx" or "torch".
    """

    onnx_bytes: bytes | None
    onnx_input_name: str
    onnx_input_shape: tuple[int, ...]
    onnx_input_dtype: str = "float32"
    path: str | None = None
    sha256: str = ""
    kind: str = "onnx"


@dataclass(frozen=True)
class Graph:
    """An immutable, validated, topologically ordered computation graph.

    Attributes:
        inputs: the graph inputs, as (name, shape) pairs; shapes exclude the batch axis.
        nodes: the nodes in topological order.
        output: the name of the output value.
        shapes: the shape of every value (filled in by validation).
        name: a human-readable name of the model.
        origin: where it came from (for replay on ONNX Runtime), if known.
    """

    inputs: tuple[tuple[str, Shape], ...]
    nodes: tuple[Node, ...]
    output: str
    name: str = "model"
    origin: ModelOrigin | None = field(default=None, compare=False)
    shapes: Mapping[str, Shape] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", MappingProxyType(_validate(self)))

    # -- convenience -------------------------------------------------------------------
    @property
    def input_name(self) -> str:
        """The name of the single graph input (most models have exactly one)."""
        if len(self.inputs) != 1:
            raise GraphError(f"graph has {len(self.inputs)} inputs; expected exactly one")
        return self.inputs[0][0]

    @property
    def input_shape(self) -> Shape:
        """The shape of the single graph input (without batch axis)."""
        return self.shapes[self.input_name]

    @property
    def input_size(self) -> int:
        """Number of scalar inputs."""
        return math.prod(self.input_shape)

    @property
    def output_shape(self) -> Shape:
        """The shape of the output value (without batch axis)."""
        return self.shapes[self.output]

    @property
    def output_size(self) -> int:
        """Number of scalar outputs."""
        return math.prod(self.output_shape)

    def node(self, name: str) -> Node:
        """Return the node computing ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def consumers(self) -> dict[str, list[str]]:
        """Map each value name to the names of the nodes that read it."""
        users: dict[str, list[str]] = {name: [] for name, _ in self.inputs}
        for node in self.nodes:
            users.setdefault(node.name, [])
            for value in node.inputs:
                users[value].append(node.name)
        return users

    def parameter_count(self) -> int:
        """Number of scalar constants held by the ops."""
        total = 0
        for node in self.nodes:
            for value in vars(node.op).values():
                if isinstance(value, np.ndarray):
                    total += value.size
        return total

    def replace(self, nodes: tuple[Node, ...], output: str | None = None) -> Graph:
        """Return a new graph with the same inputs and new nodes (validated again)."""
        return Graph(self.inputs, tuple(nodes), output or self.output, self.name, self.origin)


def _validate(graph: Graph) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for name, shape in graph.inputs:
        if name in shapes:
            raise GraphError(f"duplicate graph input {name!r}")
        if any((not isinstance(d, int)) or d <= 0 for d in shape):
            raise GraphError(f"graph input {name!r} has a non-positive or unknown dim {shape}")
        shapes[name] = tuple(shape)
    for node in graph.nodes:
        if node.name in shapes:
            raise GraphError(f"value {node.name!r} is defined twice")
        missing = [value for value in node.inputs if value not in shapes]
        if missing:
            raise GraphError(
                f"node {node.name!r} ({node.op.name}) reads {missing[0]!r}, "
                "which is not defined before it"
            )
        arity = type(node.op).arity
        if arity is not None and len(node.inputs) != arity:
            raise GraphError(
                f"node {node.name!r} ({node.op.name}) takes {arity} inputs, got {len(node.inputs)}"
            )
        _check_finite(node)
        try:
            shapes[node.name] = tuple(node.op.infer_shape(*(shapes[v] for v in node.inputs)))
        except ShapeRuleError as exc:
            raise ShapeError(
                node.source or node.name, node.op.name, exc.expected, exc.actual, exc.detail
            ) from None
    if graph.output not in shapes:
        raise GraphError(f"graph output {graph.output!r} is not computed by any node")
    return shapes


def _check_finite(node: Node) -> None:
    for attribute, value in vars(node.op).items():
        if (
            isinstance(value, np.ndarray)
            and value.dtype.kind == "f"
            and not np.all(np.isfinite(value))
        ):
            raise InvalidWeightsError(
                f"node {node.source or node.name!r} ({node.op.name}): {attribute} holds NaN or Inf"
            )
        if (
            isinstance(value, float)
            and not math.isfinite(value)
            and attribute
            not in (
                "min",
                "max",
            )
        ):
            raise InvalidWeightsError(
                f"node {node.source or node.name!r} ({node.op.name}): {attribute} is {value}"
            )
