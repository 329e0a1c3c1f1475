"""Converters of ONNX linear ops: Gemm, MatMul, Conv, BatchNormalization."""

from __future__ import annotations

import numpy as np

from importers.onnx.context import Const, Context, Dyn, Value, float_array, ints
from prover.ir import ops


def _transpose_last(ctx: Context, x: Dyn) -> Dyn:
    """Swap the last two IR axes."""
    rank = len(x.shape)
    perm = tuple(range(rank - 2)) + (rank - 1, rank - 2)
    return ctx.emit(ops.Transpose(perm), [x], x.batched)


def _gemm(ctx: Context, x: Dyn, weight: np.ndarray, bias: np.ndarray | None = None) -> Dyn:
    """``x @ weight.T (+ bias)`` over the last IR axis."""
    if bias is None:
        bias = np.zeros(weight.shape[0])
    return ctx.emit(ops.Gemm(float_array(weight), float_array(bias)), [x], x.batched)


def _squeeze_leading(ctx: Context, array: np.ndarray, keep: int) -> np.ndarray:
    """Drop leading unit axes of a constant matrix down to rank ``keep``."""
    while array.ndim > keep:
        if array.shape[0] != 1:
            raise ctx.unsupported(
                f"a constant operand of shape {array.shape}: batched matrix products of "
                "constants are not supported"
            )
        array = array[0]
    return array


def matmul_const_right(ctx: Context, x: Dyn, w: np.ndarray) -> Dyn:
    """``x @ w`` for a constant ``w`` (numpy/ONNX MatMul rules)."""
    if w.ndim > 2 and w.ndim > len(x.onnx_shape):
        raise ctx.unsupported(f"a constant right operand of rank {w.ndim} above the input's")
    w = _squeeze_leading(ctx, np.asarray(w), 2)
    if x.batched and len(x.onnx_shape) < 2:
        x = ctx.unbatch(x)
    if len(x.onnx_shape) == 0:
        raise ctx.shape_error("an operand of rank >= 1", x.onnx_shape)
    k = x.onnx_shape[-1]
    if w.shape[0] != k:
        raise ctx.shape_error(f"(..., {w.shape[0]})", x.onnx_shape, "MatMul inner dimensions")
    if w.ndim == 1:  # vector: the last axis disappears
        y = _gemm(ctx, x, w.reshape(1, -1))
        return ctx.reshape(y, y.onnx_shape[:-1], y.batched)
    return _gemm(ctx, x, w.T)


def matmul_const_left(ctx: Context, w: np.ndarray, x: Dyn) -> Dyn:
    """``w @ x`` for a constant ``w`` (numpy/ONNX MatMul rules)."""
    if w.ndim > 2 and w.ndim > len(x.onnx_shape):
        raise ctx.unsupported(f"a constant left operand of rank {w.ndim} above the input's")
    w = _squeeze_leading(ctx, np.asarray(w), 2)
    vector = w.ndim == 1
    matrix = w.reshape(1, -1) if vector else w
    if len(x.onnx_shape) == 1:  # (M, K) @ (K,) -> (M,)
        x = ctx.unbatch(x)
        if x.shape[0] != matrix.shape[1]:
            raise ctx.shape_error(f"({matrix.shape[1]},)", x.shape, "MatMul inner dimensions")
        y = _gemm(ctx, x, matrix)
        return ctx.reshape(y, (), False) if vector else y
    if x.batched and len(x.onnx_shape) == 2:  # contracts the batch axis of size 1
        x = ctx.unbatch(x)
    if x.onnx_shape[-2] != matrix.shape[1]:
        raise ctx.shape_error(
            f"(..., {matrix.shape[1]}, N)", x.onnx_shape, "MatMul inner dimensions"
        )
    y = _transpose_last(ctx, _gemm(ctx, _transpose_last(ctx, x), matrix))
    if vector:
        shape = y.onnx_shape[:-2] + y.onnx_shape[-1:]
        return ctx.reshape(y, shape, y.batched)
    return y


def convert_matmul(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """MatMul with one constant operand, on either side, becomes Gemm (and Transposes)."""
    a, b = inputs[0], inputs[1]
    if isinstance(a, Dyn) and isinstance(b, Const):
        return [matmul_const_right(ctx, a, b.value)]
    if isinstance(a, Const) and isinstance(b, Dyn):
        return [matmul_const_left(ctx, a.value, b)]
    raise ctx.unsupported("a product of two model-dependent values")


def convert_gemm(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Gemm: ``alpha * A' @ B' + beta * C`` with A' = A.T if transA, B' = B.T if transB.

    The constant operand absorbs ``alpha`` (a product of two float32 numbers, exact in
    float64) and ``beta * C`` becomes the bias.
    """
    a, b = inputs[0], inputs[1]
    c = inputs[2] if len(inputs) > 2 else None
    alpha = float(ctx.attrs.get("alpha", 1.0))
    beta = float(ctx.attrs.get("beta", 1.0))
    trans_a = bool(ctx.attrs.get("transA", 0))
    trans_b = bool(ctx.attrs.get("transB", 0))
    if isinstance(a, Dyn) and isinstance(b, Const) and b.value.ndim == 2:
        k = b.value.shape[1] if trans_b else b.value.shape[0]
        expected = f"({'1' if a.batched else 'M'}, {k})"
        if len(a.onnx_shape) != 2:
            raise ctx.shape_error(
                expected, a.onnx_shape, f"Gemm input A must be 2-D with {k} features"
            )
    for value, what in ((a, "A"), (b, "B")):
        if value is not None and len(value.onnx_shape) != 2:
            raise ctx.shape_error("a 2-D operand", value.onnx_shape, f"Gemm input {what}")
    if isinstance(a, Dyn) and isinstance(b, Const):
        weight = alpha * np.asarray(b.value, np.float64)
        weight = weight.T if trans_b else weight
        if trans_a:
            if a.batched:
                raise ctx.unsupported("transA on an input whose first axis is the batch axis")
            a = _transpose_last(ctx, a)
        if a.onnx_shape[-1] != weight.shape[0]:
            expected = f"({'1' if a.batched else 'M'}, {weight.shape[0]})"
            raise ctx.shape_error(expected, a.onnx_shape, "Gemm input features")
        y = _gemm(ctx, a, weight.T)
    elif isinstance(a, Const) and isinstance(b, Dyn):
        left = alpha * np.asarray(a.value, np.float64)
        left = left.T if trans_a else left
        x = ctx.unbatch(b)
        if not trans_b:
            x = _transpose_last(ctx, x)
        if x.shape[-1] != left.shape[1]:
            raise ctx.shape_error(f"({left.shape[1]}, N)", b.onnx_shape, "Gemm inner dimensions")
        y = _transpose_last(ctx, _gemm(ctx, x, left))
    else:
        raise ctx.unsupported("a product of two model-dependent values")
    if c is None:
        return [y]
    bias = ctx.require_const(c, "C") * np.float64(beta)
    full = np.broadcast_shapes(y.onnx_shape, bias.shape)
    if full != y.onnx_shape:
        raise ctx.shape_error(y.onnx_shape, bias.shape, "Gemm C must broadcast to the output")
    if y.batched and bias.ndim == 2:
        bias = bias[0]
    return [ctx.emit(ops.AddConst(float_array(bias)), [y], y.batched)]


def _same_pads(
    ctx: Context,
    sizes: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
) -> tuple[int, int, int, int]:
    auto_pad = str(ctx.attrs.get("auto_pad", "NOTSET"))
    pads = ints(ctx.attrs.get("pads", [0, 0, 0, 0]))
    if auto_pad in ("NOTSET", ""):
        if len(pads) != 4:
            raise ctx.shape_error("4 pads (2-D)", pads)
        return (pads[0], pads[1], pads[2], pads[3])
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.unsupported(f"auto_pad={auto_pad}")
    if any(d != 1 for d in dilations):
        raise ctx.unsupported(
            f"auto_pad={auto_pad} with dilations {dilations} (ONNX Runtime and the ONNX "
            "specification disagree on its padding; give explicit pads)"
        )
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])


def window_attrs(ctx: Context, x: Dyn, kernel: list[int]) -> dict:
    """Strides, pads (auto_pad resolved) and dilations of a 2-D window op."""
    if len(kernel) != 2 or len(x.shape) != 3:
        raise ctx.unsupported(
            f"only 2-D {ctx.op_type} on (N, C, H, W) inputs is supported "
            f"(input shape {x.onnx_shape}, kernel {kernel})"
        )
    strides = ints(ctx.attrs.get("strides", [1, 1]))
    dilations = ints(ctx.attrs.get("dilations", [1, 1]))
    if len(strides) != 2 or len(dilations) != 2 or min(strides + dilations) < 1:
        raise ctx.shape_error("2 positive strides and dilations", (strides, dilations))
    pads = _same_pads(ctx, x.shape[1:], kernel, strides, dilations)
    return {"strides": tuple(strides), "pads": pads, "dilations": tuple(dilations)}


def convert_conv(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Conv (2-D) with constant weight and bias."""
    x = inputs[0]
    if not isinstance(x, Dyn):
        raise ctx.unsupported("a constant input with a model-dependent weight")
    weight = np.asarray(ctx.require_const(inputs[1], "W"), np.float64)
    x = ctx.as_batched(x)
    bias = inputs[2] if len(inputs) > 2 else None
    bias_array = np.zeros(weight.shape[0]) if bias is None else ctx.require_const(bias, "B")
    attrs = window_attrs(ctx, x, list(weight.shape[2:]))
    op = ops.Conv(
        float_array(weight), float_array(bias_array), group=int(ctx.attrs.get("group", 1)), **attrs
    )
    return [ctx.emit(op, [x], True)]


def convert_batchnorm(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """BatchNormalization in inference: ``x * f + (B - mean * f)``, ``f = scale/sqrt(var+eps)``.

    Lowered to MulConst + AddConst along the channel axis (ONNX axis 1); the passes fold
    them into a preceding Conv or Gemm. ``f`` is computed in float64 (a rounding of the
    real value, relative error about 1e-16).
    """
    x = ctx.dyn(inputs[0])
    if int(ctx.attrs.get("spatial", 1)) != 1:
        raise ctx.unsupported("BatchNormalization with spatial=0")
    if int(ctx.attrs.get("training_mode", 0)) or any(ctx.node.output[1:]):
        raise ctx.unsupported("BatchNormalization in training mode")
    scale, shift, mean, var = (
        np.asarray(ctx.require_const(inputs[i], name), np.float64)
        for i, name in ((1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var"))
    )
    eps = float(ctx.attrs.get("epsilon", 1e-5))
    factor = scale / np.sqrt(var + eps)
    offset = shift - mean * factor
    rank = len(x.onnx_shape)
    if rank < 2:
        raise ctx.shape_error("(N, C, ...)", x.onnx_shape)
    if x.onnx_shape[1] != factor.shape[0]:
        raise ctx.shape_error(f"(N, {factor.shape[0]}, ...)", x.onnx_shape, "channels")
    view = (factor.shape[0],) + (1,) * (rank - 2)
    if not x.batched:
        x = ctx.as_batched(x)
    y = ctx.emit(ops.MulConst(float_array(factor.reshape(view))), [x], True)
    return [ctx.emit(ops.AddConst(float_array(offset.reshape(view))), [y], True)]


CONVERTERS = {
    "Gemm": convert_gemm,
    "MatMul": convert_matmul,
    "Conv": convert_conv,
    "BatchNormalization": convert_batchnorm,
}
