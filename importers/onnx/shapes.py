"""Converters of ONNX shape and indexing ops.

Reshape-like ops keep the batch axis when their result starts with it (a leading 1 that
is the input's batch); otherwise the result is unbatched, which is the same function at
batch size 1.
"""

from __future__ import annotations

import math

import numpy as np

from importers.onnx.context import Const, Context, Dyn, Value, ints
from importers.onnx.elementwise import align
from prover.ir import ops


def convert_shape(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Shape of a model-dependent value: a constant (shapes are static; batch is 1)."""
    shape = np.array(inputs[0].onnx_shape, dtype=np.int64)
    rank = len(shape)
    start = int(ctx.attrs.get("start", 0))
    end = int(ctx.attrs.get("end", rank))
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return [Const(shape[start:end])]


def convert_size(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Size of a model-dependent value: a constant."""
    return [Const(np.array(math.prod(inputs[0].onnx_shape), dtype=np.int64))]


def convert_reshape(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Reshape with 0 (copy, unless allowzero) and -1 (infer) in the target."""
    x = ctx.dyn(inputs[0])
    target = ints(ctx.require_const(inputs[1], "shape"))
    allowzero = bool(ctx.attrs.get("allowzero", 0))
    source = x.onnx_shape
    resolved = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(source):
                raise ctx.shape_error(f"a dim at index {i}", source, "Reshape 0 copies a dim")
            d = source[i]
        resolved.append(d)
    if resolved.count(-1) > 1:
        raise ctx.shape_error("at most one -1", target, "Reshape target")
    if -1 in resolved:
        known = math.prod(d for d in resolved if d != -1)
        total = math.prod(source)
        if known == 0 or total % known:
            raise ctx.shape_error(f"a shape with {total} elements", target, "Reshape target")
        resolved[resolved.index(-1)] = total // known
    keep = (
        x.batched
        and bool(target)
        and resolved[0] == 1
        and (target[0] in (1, -1) or (target[0] == 0 and not allowzero))
    )
    return [ctx.reshape(x, tuple(resolved), keep)]


def convert_flatten(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Flatten to 2-D at ``axis``; keeps the batch axis when axis <= 1."""
    x = ctx.dyn(inputs[0])
    shape = x.onnx_shape
    axis = int(ctx.attrs.get("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis <= len(shape):
        raise ctx.shape_error(f"axis in [{-len(shape)}, {len(shape)}]", axis, "Flatten")
    out = (math.prod(shape[:axis]), math.prod(shape[axis:]))
    return [ctx.reshape(x, out, x.batched and axis <= 1)]


def convert_transpose(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Transpose; the batch axis must stay first."""
    x = ctx.dyn(inputs[0])
    rank = len(x.onnx_shape)
    perm = ints(ctx.attrs.get("perm", list(range(rank))[::-1]))
    if sorted(perm) != list(range(rank)):
        raise ctx.shape_error(f"a permutation of {rank} axes", perm)
    if x.batched:
        if perm[0] != 0:
            raise ctx.unsupported(f"perm {perm} moves the batch axis")
        perm = [p - 1 for p in perm[1:]]
    if perm == list(range(len(perm))):
        return [x]
    return [ctx.emit(ops.Transpose(tuple(perm)), [x], x.batched)]


def _axes(ctx: Context, inputs: list[Value | None], since: int) -> list[int] | None:
    """Axes given as attribute (before opset ``since``) or as constant input."""
    if ctx.opset >= since:
        given = inputs[1] if len(inputs) > 1 else None
        return None if given is None else ints(ctx.require_const(given, "axes"))
    axes = ctx.attrs.get("axes")
    return None if axes is None else ints(axes)


def convert_squeeze(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Squeeze listed (or all) unit axes; squeezing the batch axis unbatches."""
    x = ctx.dyn(inputs[0])
    shape = x.onnx_shape
    axes = _axes(ctx, inputs, 13)
    if axes is None:
        drop = {i for i, d in enumerate(shape) if d == 1}
    else:
        drop = {ctx.axis(a, len(shape), "axes") for a in axes}
    for a in drop:
        if shape[a] != 1:
            raise ctx.shape_error(f"size 1 at axis {a}", shape, "Squeeze")
    out = tuple(d for i, d in enumerate(shape) if i not in drop)
    return [ctx.reshape(x, out, x.batched and 0 not in drop)]


def convert_unsqueeze(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Unsqueeze: insert unit axes (attribute before opset 13, input after)."""
    x = ctx.dyn(inputs[0])
    axes = _axes(ctx, inputs, 13) or []
    rank = len(x.onnx_shape) + len(axes)
    normal = sorted(ctx.axis(a, rank, "axes") for a in axes)
    out = list(x.onnx_shape)
    for a in normal:
        out.insert(a, 1)
    return [ctx.reshape(x, tuple(out), x.batched)]


def convert_concat(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Concat of model-dependent values and constants (constants become graph constants)."""
    values = [v for v in inputs if v is not None]
    return [concat(ctx, values, int(ctx.attrs["axis"]))]


def concat(ctx: Context, values: list[Value], axis: int) -> Dyn:
    """Concatenate ``values`` (at least one dynamic) along the ONNX axis ``axis``."""
    rank = len(values[0].onnx_shape)
    if any(len(v.onnx_shape) != rank for v in values):
        raise ctx.shape_error(f"inputs of rank {rank}", [v.onnx_shape for v in values])
    axis = ctx.axis(axis, rank)
    aligned, batched = align(ctx, values)
    if batched and axis == 0:
        raise ctx.unsupported(
            "axis 0 is the batch axis; ops across the batch axis are not supported"
        )
    nodes = [v if isinstance(v, Dyn) else ctx.constant(v.value) for v in aligned]
    ir_axis = axis - 1 if batched else axis
    return ctx.emit(ops.Concat(ir_axis), nodes, batched)


def _slice_axis(
    ctx: Context, x: Dyn, axis: int, start: int, end: int, step: int
) -> tuple[int, int | None, int] | None:
    """Normalised (start, stop, step) of one ONNX slice; None when it keeps everything."""
    size = x.onnx_shape[axis]
    if step == 0:
        raise ctx.shape_error("a nonzero step", 0, "Slice")
    # ONNX rules (not Python's): negatives count from the end, then clamp; for a
    # negative step the start clamps to [0, size-1] and the end to [-1, size-1].
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
    else:
        start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
    picked = range(start, end, step)
    if len(picked) == 0:
        raise ctx.shape_error("a non-empty slice", (0,), f"Slice of axis {axis}")
    if len(picked) == size and step == 1:
        return None
    if x.batched and axis == 0:
        return None  # the batch axis has size 1: a non-empty slice keeps it
    stop = picked[-1] + step
    return (picked[0], None if stop < 0 else stop, step)


def slice_value(
    ctx: Context, x: Dyn, axes: list[int], starts: list[int], ends: list[int], steps: list[int]
) -> Dyn:
    """Apply ONNX slicing (clamping, negative indices) to ``x``."""
    rank = len(x.onnx_shape)
    spec: dict[int, tuple[int, int | None, int]] = {}
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=False):
        normal = ctx.axis(axis, rank, "axes")
        got = _slice_axis(ctx, x, normal, start, end, step)
        if got is not None:
            spec[normal - 1 if x.batched else normal] = got
    if not spec:
        return x
    keys = tuple(sorted(spec))
    op = ops.Slice(
        keys,
        tuple(spec[k][0] for k in keys),
        tuple(spec[k][1] for k in keys),
        tuple(spec[k][2] for k in keys),
    )
    return ctx.emit(op, [x], x.batched)


def convert_slice(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Slice: attributes before opset 10, constant inputs after; steps and clamping."""
    x = ctx.dyn(inputs[0])
    if ctx.opset < 10:
        starts = ints(ctx.attrs["starts"])
        ends = ints(ctx.attrs["ends"])
        axes = ints(ctx.attrs.get("axes", list(range(len(starts)))))
        steps = [1] * len(starts)
    else:
        starts = ints(ctx.require_const(inputs[1], "starts"))
        ends = ints(ctx.require_const(inputs[2], "ends"))
        given = inputs[3] if len(inputs) > 3 else None
        axes = list(range(len(starts))) if given is None else ints(ctx.require_const(given, "axes"))
        given = inputs[4] if len(inputs) > 4 else None
        steps = [1] * len(starts) if given is None else ints(ctx.require_const(given, "steps"))
    return [slice_value(ctx, x, axes, starts, ends, steps)]


def convert_gather(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Gather with constant indices (negative ones normalised)."""
    x = ctx.dyn(inputs[0])
    indices = np.asarray(ctx.require_const(inputs[1], "indices")).astype(np.int64)
    axis = ctx.axis(int(ctx.attrs.get("axis", 0)), len(x.onnx_shape))
    size = x.onnx_shape[axis]
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise ctx.shape_error(f"indices in [{-size}, {size})", indices.tolist(), "Gather")
    indices = np.where(indices < 0, indices + size, indices)
    ir_axis = ctx.ir_axis(x, axis)
    return [ctx.emit(ops.Gather(indices, ir_axis), [x], x.batched)]


def convert_split(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Split into Slices: sizes as attribute (< 13), input (>= 13) or num_outputs (>= 18)."""
    x = ctx.dyn(inputs[0])
    rank = len(x.onnx_shape)
    axis = ctx.axis(int(ctx.attrs.get("axis", 0)), rank)
    size = x.onnx_shape[axis]
    count = len(ctx.node.output)
    if ctx.opset < 13:
        sizes = ctx.attrs.get("split")
    else:
        given = inputs[1] if len(inputs) > 1 else None
        sizes = None if given is None else ctx.require_const(given, "split")
    if sizes is not None:
        sizes = ints(sizes)
    elif "num_outputs" in ctx.attrs:
        n = int(ctx.attrs["num_outputs"])
        chunk = -(-size // n)
        sizes = [min(chunk, size - i * chunk) for i in range(n)]
    else:
        if size % count:
            raise ctx.shape_error(f"an axis divisible by {count}", x.onnx_shape, "Split")
        sizes = [size // count] * count
    if sum(sizes) != size or len(sizes) != count or min(sizes) <= 0:
        raise ctx.shape_error(f"positive sizes summing to {size}", sizes, "Split")
    outputs: list[Value] = []
    begin = 0
    for part in sizes:
        if x.batched and axis == 0:
            raise ctx.unsupported("axis 0 is the batch axis")
        outputs.append(slice_value(ctx, x, [axis], [begin], [begin + part], [1]))
        begin += part
    return outputs


def convert_pad(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Pad in constant mode: pads as attribute (< 11) or input; negative pads crop."""
    x = ctx.dyn(inputs[0])
    mode = str(ctx.attrs.get("mode", "constant"))
    if mode != "constant":
        raise ctx.unsupported(f"Pad mode {mode!r} (only 'constant')")
    rank = len(x.onnx_shape)
    if ctx.opset < 11:
        pads = ints(ctx.attrs.get("pads", ctx.attrs.get("paddings", [])))
        value = float(ctx.attrs.get("value", 0.0))
        axes = list(range(rank))
    else:
        pads = ints(ctx.require_const(inputs[1], "pads"))
        given = inputs[2] if len(inputs) > 2 else None
        value = 0.0
        if given is not None:
            array = ctx.require_const(given, "constant_value").reshape(-1)
            value = float(array[0]) if array.size else 0.0
        given = inputs[3] if len(inputs) > 3 else None
        axes = list(range(rank)) if given is None else ints(ctx.require_const(given, "axes"))
    axes = [ctx.axis(a, rank, "axes") for a in axes]
    if len(pads) != 2 * len(axes):
        raise ctx.shape_error(f"{2 * len(axes)} pads", pads, "Pad")
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[axis + rank] = pads[i], pads[i + len(axes)]
    # negative pads crop first
    crops = [
        (a, -min(full[a], 0), x.onnx_shape[a] + min(full[a + rank], 0))
        for a in range(rank)
        if full[a] < 0 or full[a + rank] < 0
    ]
    if crops:
        x = slice_value(
            ctx,
            x,
            [c[0] for c in crops],
            [c[1] for c in crops],
            [c[2] for c in crops],
            [1] * len(crops),
        )
    full = [max(p, 0) for p in full]
    if not any(full):
        return [x]
    if x.batched:
        if full[0] or full[rank]:
            raise ctx.unsupported("padding the batch axis")
        full = full[1:rank] + full[rank + 1 :]
    return [ctx.emit(ops.Pad(tuple(full), value), [x], x.batched)]


def convert_expand(ctx: Context, inputs: list[Value | None]) -> list[Value]:
    """Expand: broadcast to a constant shape (as ``x + zeros``)."""
    x = ctx.dyn(inputs[0])
    shape = tuple(ints(ctx.require_const(inputs[1], "shape")))
    out = np.broadcast_shapes(x.onnx_shape, shape)
    if out == x.onnx_shape:
        return [x]
    zeros = Const(np.zeros(shape))
    (a, b), batched = align(ctx, [x, zeros])
    return [ctx.emit(ops.Add(), [a, ctx.constant(b.value)], batched)]


CONVERTERS = {
    "Shape": convert_shape,
    "Size": convert_size,
    "Reshape": convert_reshape,
    "Flatten": convert_flatten,
    "Transpose": convert_transpose,
    "Squeeze": convert_squeeze,
    "Unsqueeze": convert_unsqueeze,
    "Concat": convert_concat,
    "Slice": convert_slice,
    "Gather": convert_gather,
    "Split": convert_split,
    "Pad": convert_pad,
    "Expand": convert_expand,
}
