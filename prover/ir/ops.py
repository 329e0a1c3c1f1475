"""Op dataclasses of the IR.

An op carries only its own facts: its attributes (weights as read-only float64 numpy
arrays) and a shape rule ``infer_shape(*input_shapes) -> output_shape``. What an op *means*
lives in interpretation tables (``prover.semantics``, ``domains.*.transfer``), never here.

Conventions:
    * Shapes exclude the batch dimension (removed at import). Every runtime value in every
      interpretation carries one leading batch axis that the shapes here do not show.
    * Axes are counted in IR coordinates (no batch axis) and are non-negative after import.
    * Constants that an op applies to its single dynamic input are attributes of the op
      (``Gemm.weight``, ``AddConst.value``); ops with several dynamic inputs (``Add``,
      ``Concat``...) take them as graph inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

Shape = tuple[int, ...]


class ShapeRuleError(ValueError):
    """Raised by a shape rule; the graph turns it into a ShapeError naming the node."""

    def __init__(self, expected: object, actual: object, detail: str = "") -> None:
        self.expected = expected
        self.actual = actual
        self.detail = detail
        super().__init__(f"expected {expected}, got {actual} {detail}".strip())


def frozen_array(value: object) -> np.ndarray:
    """Return a read-only float64 copy of ``value`` (exact for float32 weights)."""
    array = np.array(value, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


def broadcast_shapes(*shapes: Shape) -> Shape:
    """Numpy broadcasting of IR shapes; raises ShapeRuleError when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as exc:
        raise ShapeRuleError("broadcastable shapes", " and ".join(map(str, shapes))) from exc


@dataclass(frozen=True, eq=False)
class Op:
    """Base class of every op. ``arity`` is the number of dynamic inputs (None: any)."""

    arity: ClassVar[int | None] = 1

    def infer_shape(self, *shapes: Shape) -> Shape:
        """Return the output shape for the given input shapes."""
        (shape,) = shapes
        return shape

    @property
    def name(self) -> str:
        """The op's name, as shown to users (its class name)."""
        return type(self).__name__

    def describe(self) -> str:
        """A short text of the attributes, for `prover inspect`."""
        return ""


# --------------------------------------------------------------------------- linear maps


@dataclass(frozen=True, eq=False)
class Gemm(Op):
    """``y = x @ weight.T + bias`` over the last axis; weight has shape (out, in)."""

    weight: np.ndarray
    bias: np.ndarray

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        n_out, n_in = self.weight.shape
        if len(shape) == 0 or shape[-1] != n_in:
            raise ShapeRuleError(f"(..., {n_in})", shape, "Gemm input features")
        return shape[:-1] + (n_out,)

    def describe(self) -> str:
        return f"{self.weight.shape[1]} -> {self.weight.shape[0]}"


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """2-D convolution (NCHW without batch: input (C, H, W)), ONNX semantics.

    ``pads`` is (top, left, bottom, right); weight is (out_channels, C / group, kH, kW).
    """

    weight: np.ndarray
    bias: np.ndarray
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    group: int = 1

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        out_c, in_per_group, kh, kw = self.weight.shape
        if len(shape) != 3:
            raise ShapeRuleError("(C, H, W)", shape, "Conv input")
        if shape[0] != in_per_group * self.group:
            raise ShapeRuleError(
                f"({in_per_group * self.group}, H, W)", shape, "Conv input channels"
            )
        h = _pool_out(shape[1], kh, self.strides[0], self.pads[0], self.pads[2], self.dilations[0])
        w = _pool_out(shape[2], kw, self.strides[1], self.pads[1], self.pads[3], self.dilations[1])
        if h <= 0 or w <= 0:
            raise ShapeRuleError("positive output size", (out_c, h, w), "Conv")
        return (out_c, h, w)

    def describe(self) -> str:
        return (
            f"{self.weight.shape[1] * self.group}->{self.weight.shape[0]} "
            f"k={tuple(self.weight.shape[2:])} s={self.strides} p={self.pads} "
            f"d={self.dilations} g={self.group}"
        )


def _pool_out(size: int, kernel: int, stride: int, pad0: int, pad1: int, dil: int = 1) -> int:
    return (size + pad0 + pad1 - dil * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True, eq=False)
class AddConst(Op):
    """``y = x + value`` (value broadcast to the input's shape)."""

    value: np.ndarray

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        out = broadcast_shapes(shape, self.value.shape)
        if out != shape:
            raise ShapeRuleError(shape, out, "constant must broadcast to the input")
        return shape


@dataclass(frozen=True, eq=False)
class MulConst(Op):
    """``y = x * value`` (value broadcast to the input's shape)."""

    value: np.ndarray

    def infer_shape(self, *shapes: Shape) -> Shape:
        return AddConst.infer_shape(self, *shapes)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class DivConst(Op):
    """``y = x / value`` with a nonzero constant divisor."""

    value: np.ndarray

    def infer_shape(self, *shapes: Shape) -> Shape:
        return AddConst.infer_shape(self, *shapes)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class Neg(Op):
    """``y = -x``."""


@dataclass(frozen=True, eq=False)
class Add(Op):
    """``y = a + b`` of two dynamic inputs (numpy broadcasting)."""

    arity: ClassVar[int | None] = 2

    def infer_shape(self, *shapes: Shape) -> Shape:
        return broadcast_shapes(*shapes)


@dataclass(frozen=True, eq=False)
class Sub(Add):
    """``y = a - b`` of two dynamic inputs."""


@dataclass(frozen=True, eq=False)
class Mul(Add):
    """``y = a * b`` of two dynamic inputs."""


@dataclass(frozen=True, eq=False)
class Div(Add):
    """``y = a / b`` of two dynamic inputs."""


@dataclass(frozen=True, eq=False)
class ConstantOf(Op):
    """A constant value with no dynamic input (kept only when folding cannot remove it).

    The value carries no batch axis; interpretations broadcast it over the batch.
    """

    value: np.ndarray
    arity: ClassVar[int | None] = 0

    def infer_shape(self, *shapes: Shape) -> Shape:
        return tuple(self.value.shape)


# ------------------------------------------------------------------ elementwise nonlinear


@dataclass(frozen=True, eq=False)
class Relu(Op):
    """``y = max(x, 0)``."""


@dataclass(frozen=True, eq=False)
class LeakyRelu(Op):
    """``y = x if x >= 0 else alpha * x``."""

    alpha: float = 0.01


@dataclass(frozen=True, eq=False)
class Sigmoid(Op):
    """``y = 1 / (1 + exp(-x))``."""


@dataclass(frozen=True, eq=False)
class Tanh(Op):
    """``y = tanh(x)``."""


@dataclass(frozen=True, eq=False)
class Exp(Op):
    """``y = exp(x)``."""


@dataclass(frozen=True, eq=False)
class Log(Op):
    """``y = log(x)`` (natural logarithm; NaN/-Inf outside x > 0)."""


@dataclass(frozen=True, eq=False)
class Sqrt(Op):
    """``y = sqrt(x)``."""


@dataclass(frozen=True, eq=False)
class Abs(Op):
    """``y = |x|``."""


@dataclass(frozen=True, eq=False)
class Clip(Op):
    """``y = min(max(x, min), max)``; ``None`` means unbounded on that side."""

    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``axis``."""

    axis: int = -1

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        _check_axis(self.axis, shape, "Softmax")
        return shape


# ------------------------------------------------------------------------ pooling


@dataclass(frozen=True, eq=False)
class MaxPool(Op):
    """2-D max pooling on (C, H, W); padding never wins the max (ONNX semantics)."""

    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    ceil_mode: bool = False

    def infer_shape(self, *shapes: Shape) -> Shape:
        return _pool_shape(self, shapes, "MaxPool")


@dataclass(frozen=True, eq=False)
class AveragePool(Op):
    """2-D average pooling on (C, H, W).

    With ``count_include_pad`` the divisor is always kH*kW, otherwise the number of
    non-padding elements in each window.
    """

    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = False
    ceil_mode: bool = False
    dilations: tuple[int, int] = field(default=(1, 1))

    def infer_shape(self, *shapes: Shape) -> Shape:
        return _pool_shape(self, shapes, "AveragePool")


def _pool_shape(op: MaxPool | AveragePool, shapes: tuple[Shape, ...], name: str) -> Shape:
    (shape,) = shapes
    if len(shape) != 3:
        raise ShapeRuleError("(C, H, W)", shape, f"{name} input")
    dims = []
    for i in range(2):
        span = shape[1 + i] + op.pads[i] + op.pads[i + 2] - op.dilations[i] * (op.kernel[i] - 1) - 1
        if op.ceil_mode:
            out = -(-span // op.strides[i]) + 1
            # ONNX/PyTorch: the last window must start inside the (left-padded) input.
            if (out - 1) * op.strides[i] >= shape[1 + i] + op.pads[i]:
                out -= 1
        else:
            out = span // op.strides[i] + 1
        dims.append(out)
    if min(dims) <= 0:
        raise ShapeRuleError("positive output size", (shape[0], *dims), name)
    return (shape[0], dims[0], dims[1])


# ------------------------------------------------------------------------ reductions


@dataclass(frozen=True, eq=False)
class ReduceSum(Op):
    """Sum over ``axes`` (IR axes), keeping them as size 1 when ``keepdims``."""

    axes: tuple[int, ...]
    keepdims: bool = True

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        for axis in self.axes:
            _check_axis(axis, shape, self.name)
        if self.keepdims:
            return tuple(1 if i in self.axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in self.axes)


@dataclass(frozen=True, eq=False)
class ReduceMean(ReduceSum):
    """Mean over ``axes`` (IR axes)."""


# ----------------------------------------------------------------- shape and indexing


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """Reshape (C order) to a fully known ``shape``."""

    shape: tuple[int, ...]

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        if math.prod(shape) != math.prod(self.shape):
            raise ShapeRuleError(
                f"{math.prod(self.shape)} elements", f"{shape} ({math.prod(shape)} elements)"
            )
        return tuple(self.shape)

    def describe(self) -> str:
        return f"-> {self.shape}"


@dataclass(frozen=True, eq=False)
class Transpose(Op):
    """Permute axes by ``perm`` (IR axes)."""

    perm: tuple[int, ...]

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        if sorted(self.perm) != list(range(len(shape))):
            raise ShapeRuleError(f"rank {len(self.perm)}", shape, "Transpose perm")
        return tuple(shape[p] for p in self.perm)


@dataclass(frozen=True, eq=False)
class Concat(Op):
    """Concatenate the inputs along ``axis``."""

    axis: int
    arity: ClassVar[int | None] = None

    def infer_shape(self, *shapes: Shape) -> Shape:
        first = shapes[0]
        _check_axis(self.axis, first, "Concat")
        for shape in shapes[1:]:
            if len(shape) != len(first) or any(
                a != b for i, (a, b) in enumerate(zip(shape, first, strict=False)) if i != self.axis
            ):
                raise ShapeRuleError(first, shape, f"Concat along axis {self.axis}")
        total = sum(shape[self.axis] for shape in shapes)
        return first[: self.axis] + (total,) + first[self.axis + 1 :]


@dataclass(frozen=True, eq=False)
class Slice(Op):
    """Python slicing ``x[start:stop:step]`` along each listed axis.

    Bounds are normalised at import: starts non-negative, stops non-negative or None
    (None: run to the end in the direction of ``step``).
    """

    axes: tuple[int, ...]
    starts: tuple[int, ...]
    stops: tuple[int | None, ...]
    steps: tuple[int, ...]

    def slices(self, rank: int) -> tuple[slice, ...]:
        """The index tuple (without batch axis) that this op applies."""
        index = [slice(None)] * rank
        for axis, start, stop, step in zip(
            self.axes, self.starts, self.stops, self.steps, strict=False
        ):
            index[axis] = slice(start, stop, step)
        return tuple(index)

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        for axis in self.axes:
            _check_axis(axis, shape, "Slice")
        out = np.empty(shape, dtype=np.int8)[self.slices(len(shape))].shape
        if 0 in out:
            raise ShapeRuleError("a non-empty slice", out, "Slice")
        return tuple(out)


@dataclass(frozen=True, eq=False)
class Gather(Op):
    """``numpy.take(x, indices, axis)`` with constant, non-negative indices."""

    indices: np.ndarray
    axis: int

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        _check_axis(self.axis, shape, "Gather")
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= shape[self.axis]):
            raise ShapeRuleError(f"indices in [0, {shape[self.axis]})", self.indices.tolist())
        return shape[: self.axis] + tuple(self.indices.shape) + shape[self.axis + 1 :]


@dataclass(frozen=True, eq=False)
class Pad(Op):
    """Constant padding: ``pads`` = (begin_0, ..., begin_k, end_0, ..., end_k), non-negative."""

    pads: tuple[int, ...]
    value: float = 0.0

    def infer_shape(self, *shapes: Shape) -> Shape:
        (shape,) = shapes
        rank = len(shape)
        if len(self.pads) != 2 * rank or min(self.pads, default=0) < 0:
            raise ShapeRuleError(f"{2 * rank} non-negative pads", self.pads, "Pad")
        return tuple(d + self.pads[i] + self.pads[i + rank] for i, d in enumerate(shape))


def _check_axis(axis: int, shape: Shape, op: str) -> None:
    if not 0 <= axis < len(shape):
        raise ShapeRuleError(f"an axis in [0, {len(shape)})", axis, f"{op} axis")


#: Every op class of the IR, in a stable order (for support matrices).
ALL_OPS: tuple[type[Op], ...] = (
    Gemm,
    Conv,
    AddConst,
    MulConst,
    DivConst,
    Neg,
    Add,
    Sub,
    Mul,
    Div,
    ConstantOf,
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Abs,
    Clip,
    Softmax,
    MaxPool,
    AveragePool,
    ReduceSum,
    ReduceMean,
    Reshape,
    Transpose,
    Concat,
    Slice,
    Gather,
    Pad,
)
