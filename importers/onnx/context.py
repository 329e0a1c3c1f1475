"""Values and the conversion context shared by the ONNX converters.

During import every ONNX value is either a :class:`Const` (a numpy array, folded at import
time) or a :class:`Dyn` (an IR value that depends on the model input). A ``Dyn`` knows
whether its ONNX shape carries the batch axis: ``batched`` values have ONNX shape
``(1, *shape)`` and IR shape ``shape``; others have the same shape in both. Converters
reason in ONNX axes and translate them with :meth:`Context.ir_axis`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper

from prover.errors import ModelError, ShapeError, UnsupportedOperation
from prover.ir import ops
from prover.ir.graph import Node
from prover.ir.ops import Shape, ShapeRuleError


@dataclass(frozen=True)
class Const:
    """A value known at import time (ONNX dtype kept)."""

    value: np.ndarray

    @property
    def onnx_shape(self) -> Shape:
        """The ONNX shape of the constant."""
        return tuple(self.value.shape)


@dataclass(frozen=True)
class Dyn:
    """A value computed by the IR graph from the model input."""

    name: str
    shape: Shape
    batched: bool

    @property
    def onnx_shape(self) -> Shape:
        """The ONNX shape (batch axis of size 1 included when batched)."""
        return (1, *self.shape) if self.batched else self.shape


Value = Const | Dyn


@dataclass
class Context:
    """Where converters emit IR nodes, with the ONNX node being converted.

    Attributes:
        opset: the default-domain opset version of the model.
        nodes: the IR nodes emitted so far.
        node: the ONNX node being converted.
        attrs: its attributes as Python values (strings decoded).
    """

    opset: int
    nodes: list[Node] = field(default_factory=list)
    node: onnx.NodeProto | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    where: tuple[str, str, str] | None = None  # (kind, name, op) for non-ONNX sources

    # -- the node being converted ------------------------------------------------------
    def start(self, node: onnx.NodeProto) -> None:
        """Make ``node`` the current ONNX node."""
        self.node = node
        self.attrs = {}
        for attribute in node.attribute:
            value = helper.get_attribute_value(attribute)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            self.attrs[attribute.name] = value

    @property
    def op_type(self) -> str:
        """The ONNX op type of the current node."""
        if self.where is not None:
            return self.where[2]
        return self.node.op_type if self.node is not None else "?"

    @property
    def node_name(self) -> str:
        """The current node's name (its first output's name when it has none)."""
        if self.where is not None:
            return self.where[1]
        if self.node is None:
            return "onnx graph"
        return self.node.name or (self.node.output[0] if self.node.output else "?")

    @property
    def source(self) -> str:
        """How messages name the current node: "onnx node 'Gemm_3' (Gemm)"."""
        if self.where is not None:
            return f"{self.where[0]} node {self.where[1]!r} ({self.where[2]})"
        return describe_node(self.node) if self.node is not None else "onnx graph"

    def unsupported(self, reason: str) -> UnsupportedOperation:
        """An error for a feature of the current node that the importer cannot express."""
        importer = "PyTorch importer" if self.where is not None else "ONNX importer"
        return UnsupportedOperation(self.op_type, self.node_name, (), f"{importer}: {reason}")

    def shape_error(self, expected: object, actual: object, detail: str = "") -> ShapeError:
        """A shape error naming the current node."""
        return ShapeError(self.source, self.op_type, expected, actual, detail)

    # -- emitting IR ---------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A value name not used before, based on ``hint``."""
        name, k = hint or "v", 1
        while name in self.used:
            name = f"{hint}:{k}"
            k += 1
        self.used.add(name)
        return name

    def emit(self, op: ops.Op, inputs: list[Dyn], batched: bool) -> Dyn:
        """Append ``op(*inputs)`` and return its value; shape errors name the ONNX node."""
        try:
            shape = tuple(op.infer_shape(*(value.shape for value in inputs)))
        except ShapeRuleError as exc:
            raise ShapeError(
                self.source, self.op_type, exc.expected, exc.actual, exc.detail
            ) from None
        if self.where is not None:
            hint = self.where[1]
        elif self.node is not None and self.node.output:
            hint = self.node.output[0]
        else:
            hint = op.name
        name = self.fresh(hint)
        self.nodes.append(Node(name, op, tuple(v.name for v in inputs), self.source))
        return Dyn(name, shape, batched)

    def constant(self, value: np.ndarray, batched: bool = False) -> Dyn:
        """An IR constant node (for a constant operand of a multi-input op).

        With ``batched``, ``value`` must have a leading axis of size 1, which becomes the
        batch axis.
        """
        array = np.asarray(value, dtype=np.float64)
        if batched:
            array = array.reshape(array.shape[1:])
        return self.emit(ops.ConstantOf(ops.frozen_array(array)), [], batched)

    # -- axes and batch ----------------------------------------------------------------
    def axis(self, axis: int, rank: int, what: str = "axis") -> int:
        """Normalise an ONNX axis (negative counts from the end)."""
        normal = axis + rank if axis < 0 else axis
        if not 0 <= normal < rank:
            raise self.shape_error(f"{what} in [{-rank}, {rank})", axis, f"rank {rank}")
        return normal

    def ir_axis(self, value: Dyn, axis: int, what: str = "axis") -> int:
        """Translate an ONNX axis of ``value`` into an IR axis; refuse the batch axis."""
        normal = self.axis(axis, len(value.onnx_shape), what)
        if value.batched:
            if normal == 0:
                raise self.unsupported(
                    f"{what} {axis} is the batch axis; ops across the batch axis are not supported"
                )
            return normal - 1
        return normal

    def reshape(self, value: Dyn, onnx_shape: Shape, batched: bool) -> Dyn:
        """Reshape ``value`` to ``onnx_shape`` (its leading 1 is the batch when ``batched``)."""
        target = tuple(int(d) for d in onnx_shape)
        if batched:
            if not target or target[0] != 1:
                raise self.shape_error("a leading batch axis of size 1", target)
            target = target[1:]
        if math.prod(target) != math.prod(value.shape):
            raise self.shape_error(f"{math.prod(value.shape)} elements", target, "reshape")
        if target == value.shape and batched == value.batched:
            return value
        if target == value.shape:
            return Dyn(value.name, value.shape, batched)
        return self.emit(ops.Reshape(target), [value], batched)

    def unbatch(self, value: Dyn) -> Dyn:
        """View a batched value as unbatched (its ONNX shape becomes its IR shape)."""
        if not value.batched:
            return value
        return self.reshape(value, value.onnx_shape, batched=False)

    def as_batched(self, value: Dyn) -> Dyn:
        """View a value whose ONNX shape starts with 1 as batched (for NCHW ops)."""
        if value.batched:
            return value
        if not value.shape or value.shape[0] != 1:
            raise self.shape_error("(1, ...) (a batch of one)", value.onnx_shape)
        return self.reshape(value, value.shape, batched=True)

    def dyn(self, value: Value | None) -> Dyn:
        """A dynamic input; a constant (or missing) one where the importer needs a
        model-dependent value is not supported."""
        if not isinstance(value, Dyn):
            raise self.unsupported(
                "a constant or missing data input combined with model-dependent parameters"
            )
        return value

    def require_const(self, value: Value | None, what: str) -> np.ndarray:
        """The array of a constant input; dynamic ones are not supported."""
        if value is None:
            raise ModelError(f"{self.source}: missing input {what}")
        if isinstance(value, Dyn):
            raise self.unsupported(f"{what} must be a constant (it depends on the model input)")
        return value.value


def describe_node(node: onnx.NodeProto) -> str:
    """The name messages use for an ONNX node: "onnx node 'Gemm_3' (Gemm)"."""
    name = node.name or (node.output[0] if node.output else "?")
    return f"onnx node {name!r} ({node.op_type})"


def float_array(value: np.ndarray) -> np.ndarray:
    """A read-only float64 copy (exact for float32 data)."""
    return ops.frozen_array(value)


def ints(value: object) -> list[int]:
    """A list of Python ints from an attribute or a constant tensor."""
    return [int(v) for v in np.asarray(value).reshape(-1)]
