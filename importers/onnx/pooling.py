"""Converters of ONNX pooling and reduction ops."""

from __future__ import annotations

from importers.onnx.context import Context, Dyn, Value, ints
from importers.onnx.linear import window_attrs
from prover.ir import ops


def _input(ctx: Context, value: Value | None) -> Dyn:
    if not isinstance(value, Dyn):
        raise ctx.unsupported("a constant input")
    return ctx.as_batched(value)


def convert_maxpool(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """MaxPool (2-D); the optional Indices output is not supported."""
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise ctx.unsupported("the Indices output of MaxPool")
    x = _input(ctx, inputs[0])
    kernel = ints(ctx.attrs.get("kernel_shape", []))
    attrs = window_attrs(ctx, x, kernel)
    op = ops.MaxPool((kernel[0], kernel[1]), ceil_mode=bool(ctx.attrs.get("ceil_mode", 0)), **attrs)
    return [ctx.emit(op, [x], True)]


def convert_avgpool(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """AveragePool (2-D) with count_include_pad and ceil_mode; no dilation."""
    x = _input(ctx, inputs[0])
    kernel = ints(ctx.attrs.get("kernel_shape", []))
    attrs = window_attrs(ctx, x, kernel)
    if attrs["dilations"] != (1, 1):
        raise ctx.unsupported("dilated AveragePool")
    op = ops.AveragePool(
        (kernel[0], kernel[1]),
        count_include_pad=bool(ctx.attrs.get("count_include_pad", 0)),
        ceil_mode=bool(ctx.attrs.get("ceil_mode", 0)),
        **attrs,
    )
    return [ctx.emit(op, [x], True)]


def convert_global_avgpool(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """GlobalAveragePool: mean over H and W, kept as size-1 axes."""
    x = _input(ctx, inputs[0])
    if len(x.shape) != 3:
        raise ctx.unsupported(f"only 2-D GlobalAveragePool (input {x.onnx_shape})")
    return [ctx.emit(ops.ReduceMean((1, 2), keepdims=True), [x], True)]


def convert_global_maxpool(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """GlobalMaxPool: a MaxPool whose window is the whole image."""
    x = _input(ctx, inputs[0])
    if len(x.shape) != 3:
        raise ctx.unsupported(f"only 2-D GlobalMaxPool (input {x.onnx_shape})")
    return [ctx.emit(ops.MaxPool((x.shape[1], x.shape[2])), [x], True)]


def convert_reduce(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """ReduceSum / ReduceMean with axes as attribute or input (ReduceSum from opset 13,
    ReduceMean from opset 18).

    Reducing the batch axis (of size 1) is the identity on it: it is dropped from the
    axes, and the result is unbatched when the batch axis is not kept.
    """
    x = ctx.dyn(inputs[0])
    as_input = ctx.opset >= (13 if ctx.op_type == "ReduceSum" else 18)
    if as_input:
        given = inputs[1] if len(inputs) > 1 else None
        axes = None if given is None else ints(ctx.require_const(given, "axes"))
    else:
        axes = ctx.attrs.get("axes")
        axes = None if axes is None else ints(axes)
    keepdims = bool(ctx.attrs.get("keepdims", 1))
    rank = len(x.onnx_shape)
    if not axes:
        if as_input and ctx.attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(rank))
    normal = sorted({ctx.axis(a, rank, "axes") for a in axes})
    cls = ops.ReduceSum if ctx.op_type == "ReduceSum" else ops.ReduceMean
    if x.batched:
        ir_axes = tuple(a - 1 for a in normal if a > 0)
        batched = keepdims or 0 not in normal
    else:
        ir_axes, batched = tuple(normal), False
    if not ir_axes:
        y = x
    else:
        y = ctx.emit(cls(ir_axes, keepdims), [x], x.batched)
    if y.batched and not batched:
        y = ctx.reshape(y, y.shape, batched=False)
    return [y]


CONVERTERS = {
    "MaxPool": convert_maxpool,
    "AveragePool": convert_avgpool,
    "GlobalAveragePool": convert_global_avgpool,
    "GlobalMaxPool": convert_global_maxpool,
    "ReduceSum": convert_reduce,
    "ReduceMean": convert_reduce,
}
