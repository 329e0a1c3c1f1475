"""Converters of elementwise ONNX ops: arithmetic, activations, Clip, Softmax, Identity."""

from __future__ import annotations

import math

import numpy as np
import onnx

from importers.onnx.context import Const, Context, Dyn, Value, float_array
from prover.ir import ops


def align(ctx: Context, values: list[Value]) -> tuple[list[Value], bool]:
    """Bring the operands of a broadcasting op into IR coordinates.

    Returns the operands (``Dyn`` values with equal IR rank, constants as arrays shaped for
    IR broadcasting) and whether the result is batched. When every dynamic operand is
    batched with the full rank, the batch axis is kept; otherwise every operand is viewed
    unbatched and padded with leading ones (exact: both are the ONNX function at batch 1).
    """
    rank = max(len(v.onnx_shape) for v in values)
    dyns = [v for v in values if isinstance(v, Dyn)]
    keep = all(v.batched and len(v.shape) + 1 == rank for v in dyns) and all(
        len(v.onnx_shape) < rank or v.onnx_shape[0] == 1 for v in values if isinstance(v, Const)
    )
    out: list[Value] = []
    for value in values:
        if isinstance(value, Const):
            array = value.value
            if keep and array.ndim == rank:
                array = array.reshape(array.shape[1:])
            out.append(Const(array))
        elif keep:
            out.append(value)
        else:
            flat = ctx.unbatch(value)
            padded = (1,) * (rank - len(flat.shape)) + flat.shape
            out.append(ctx.reshape(flat, padded, batched=False))
    return out, keep


_CONST_OPS = {"Add": ops.AddConst, "Mul": ops.MulConst}
_DYN_OPS = {"Add": ops.Add, "Sub": ops.Sub, "Mul": ops.Mul, "Div": ops.Div}


def convert_binary(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Add/Sub/Mul/Div: a constant operand becomes AddConst/MulConst/DivConst."""
    return [binary(ctx, ctx.op_type, inputs[0], inputs[1])]


def binary(ctx: Context, kind: str, left: Value, right: Value) -> Dyn:
    """``left <kind> right`` (kind: Add, Sub, Mul or Div), at least one operand dynamic."""
    (a, b), batched = align(ctx, [left, right])
    if isinstance(a, Dyn) and isinstance(b, Dyn):
        return ctx.emit(_DYN_OPS[kind](), [a, b], batched)
    dyn, const = (a, b) if isinstance(a, Dyn) else (b, a)
    assert isinstance(dyn, Dyn) and isinstance(const, Const)
    value = const.value
    if np.broadcast_shapes(dyn.shape, value.shape) != dyn.shape:
        # The constant enlarges the result: keep it as a graph constant.
        node = ctx.constant(value)
        pair = [dyn, node] if dyn is a else [node, dyn]
        return ctx.emit(_DYN_OPS[kind](), pair, batched)
    if kind in _CONST_OPS:
        return ctx.emit(_CONST_OPS[kind](float_array(value)), [dyn], batched)
    if kind == "Sub" and dyn is a:  # x - c == x + (-c), exactly
        return ctx.emit(ops.AddConst(float_array(-np.asarray(value, np.float64))), [dyn], batched)
    if kind == "Sub":  # c - x == (-x) + c, exactly
        negated = ctx.emit(ops.Neg(), [dyn], batched)
        return ctx.emit(ops.AddConst(float_array(value)), [negated], batched)
    if dyn is a:  # x / c
        if np.any(np.asarray(value) == 0):
            raise ctx.unsupported("division by a constant that holds zero")
        return ctx.emit(ops.DivConst(float_array(value)), [dyn], batched)
    node = ctx.constant(value)
    return ctx.emit(ops.Div(), [node, dyn], batched)


_UNARY = {
    "Neg": ops.Neg,
    "Relu": ops.Relu,
    "Sigmoid": ops.Sigmoid,
    "Tanh": ops.Tanh,
    "Exp": ops.Exp,
    "Log": ops.Log,
    "Sqrt": ops.Sqrt,
    "Abs": ops.Abs,
}


def convert_unary(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Neg, Relu, Sigmoid, Tanh, Exp, Log, Sqrt, Abs: one IR op each."""
    x = ctx.dyn(inputs[0])
    return [ctx.emit(_UNARY[ctx.op_type](), [x], x.batched)]


def convert_leaky_relu(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """LeakyRelu(alpha), alpha defaults to 0.01."""
    x = ctx.dyn(inputs[0])
    return [ctx.emit(ops.LeakyRelu(float(ctx.attrs.get("alpha", 0.01))), [x], x.batched)]


def convert_clip(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Clip: bounds as attributes (opset < 11) or constant inputs (opset >= 11)."""
    x = ctx.dyn(inputs[0])
    if ctx.opset < 11:
        low = ctx.attrs.get("min")
        high = ctx.attrs.get("max")
    else:
        low = _scalar(ctx, inputs[1] if len(inputs) > 1 else None, "min")
        high = _scalar(ctx, inputs[2] if len(inputs) > 2 else None, "max")
    low = None if low is None or low == -math.inf else float(low)
    high = None if high is None or high == math.inf else float(high)
    return [ctx.emit(ops.Clip(low, high), [x], x.batched)]


def _scalar(ctx: Context, value: Value | None, what: str) -> float | None:
    if value is None:
        return None
    array = ctx.require_const(value, what)
    return float(np.asarray(array).reshape(-1)[0])


def convert_softmax(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Softmax: one axis from opset 13; before, over the input coerced to 2-D at ``axis``.

    The old semantics (softmax over all axes from ``axis`` on, flattened) is lowered to
    Reshape + Softmax(last axis) + Reshape. Over the batch axis it is a softmax over the
    whole sample (the batch has size 1), which is expressible too.
    """
    x = ctx.dyn(inputs[0])
    rank = len(x.onnx_shape)
    if ctx.opset >= 13:
        axis = ctx.ir_axis(x, int(ctx.attrs.get("axis", -1)))
        return [ctx.emit(ops.Softmax(axis), [x], x.batched)]
    axis = ctx.axis(int(ctx.attrs.get("axis", 1)), rank)
    if axis == rank - 1 and not (x.batched and axis == 0):
        return [ctx.emit(ops.Softmax(len(x.shape) - 1), [x], x.batched)]
    start = max(axis - 1, 0) if x.batched else axis
    flat_shape = x.shape[:start] + (math.prod(x.shape[start:]),)
    flat = ctx.emit(ops.Reshape(flat_shape), [x], x.batched)
    soft = ctx.emit(ops.Softmax(len(flat_shape) - 1), [flat], x.batched)
    return [ctx.emit(ops.Reshape(x.shape), [soft], x.batched)]


def convert_identity(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Identity, and Dropout in inference (its optional mask output is all true)."""
    x = inputs[0]
    assert x is not None
    outputs: list[Value] = [x]
    if ctx.op_type == "Dropout" and len(ctx.node.output) > 1 and ctx.node.output[1]:
        if ctx.opset < 10 or ctx.attrs.get("is_test") == 0:
            raise ctx.unsupported("Dropout mask output")
        outputs.append(Const(np.ones(x.onnx_shape, dtype=bool)))
    if ctx.op_type == "Dropout" and len(inputs) > 2 and inputs[2] is not None:
        mode = ctx.require_const(inputs[2], "training_mode")
        if bool(np.asarray(mode).reshape(-1)[0]):
            raise ctx.unsupported("Dropout in training mode")
    return outputs


_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


def convert_cast(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Cast of a model-dependent value to a float type: the identity over the reals."""
    if int(ctx.attrs.get("to", 0)) not in _FLOAT_TYPES:
        raise ctx.unsupported("Cast of a model-dependent value to a non-float type")
    return [inputs[0]]  # type: ignore[list-item]


CONVERTERS = {
    "Add": convert_binary,
    "Sub": convert_binary,
    "Mul": convert_binary,
    "Div": convert_binary,
    **{name: convert_unary for name in _UNARY},
    "LeakyRelu": convert_leaky_relu,
    "Clip": convert_clip,
    "Softmax": convert_softmax,
    "Identity": convert_identity,
    "Dropout": convert_identity,
    "Cast": convert_cast,
}
