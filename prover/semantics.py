"""Concrete semantics of the IR: the reference meaning of every op.

Values are torch tensors with one leading batch axis (shape ``(B, *ir_shape)``), float64
by default. Being written in torch, this table also gives gradients for falsification
(PGD) for free. ONNX Runtime is the independent executor the tests compare it with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prover.ir import ops
from prover.ir.graph import Graph
from prover.ir.interpreter import Table, interpret
from prover.tensors import constant


def _const(value: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return constant(value, like)


def _gemm(op: ops.Gemm, x: torch.Tensor) -> torch.Tensor:
    return x @ _const(op.weight, x).T + _const(op.bias, x)


def conv_padding(x: torch.Tensor, pads: tuple[int, int, int, int], value: float = 0.0):
    """ONNX pads (top, left, bottom, right) as torch conv2d ``padding``, padding ``x``
    explicitly when the two sides differ. Returns ``(x, padding)``."""
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return x, (top, left)
    return F.pad(x, (left, right, top, bottom), value=value), (0, 0)


def _conv(op: ops.Conv, x: torch.Tensor) -> torch.Tensor:
    x, padding = conv_padding(x, op.pads)
    return F.conv2d(
        x,
        _const(op.weight, x),
        _const(op.bias, x),
        stride=op.strides,
        padding=padding,
        dilation=op.dilations,
        groups=op.group,
    )


def _pool_pad(op: ops.MaxPool | ops.AveragePool, x: torch.Tensor, value: float) -> torch.Tensor:
    """Pad explicitly (also the extra right/bottom padding that ceil_mode needs)."""
    top, left, bottom, right = op.pads
    out_h, out_w = op.infer_shape(tuple(x.shape[1:]))[1:]
    need_h = (out_h - 1) * op.strides[0] + op.dilations[0] * (op.kernel[0] - 1) + 1
    need_w = (out_w - 1) * op.strides[1] + op.dilations[1] * (op.kernel[1] - 1) + 1
    extra_b = max(0, need_h - (x.shape[2] + top + bottom))
    extra_r = max(0, need_w - (x.shape[3] + left + right))
    return F.pad(x, (left, right + extra_r, top, bottom + extra_b), value=value)


def _maxpool(op: ops.MaxPool, x: torch.Tensor) -> torch.Tensor:
    padded = _pool_pad(op, x, float("-inf"))
    return F.max_pool2d(padded, op.kernel, op.strides, dilation=op.dilations)


def _avgpool(op: ops.AveragePool, x: torch.Tensor) -> torch.Tensor:
    if op.dilations != (1, 1):
        raise ValueError("dilated AveragePool is not supported")
    padded = _pool_pad(op, x, 0.0)
    sums = F.avg_pool2d(padded, op.kernel, op.strides) * (op.kernel[0] * op.kernel[1])
    if op.count_include_pad:
        ones = torch.zeros_like(x[:1, :1])
        top, left, bottom, right = op.pads
        ones = F.pad(ones + 1, (left, right, top, bottom), value=1.0)
        ones = F.pad(ones, (0, padded.shape[3] - ones.shape[3], 0, padded.shape[2] - ones.shape[2]))
    else:
        ones = _pool_pad(op, torch.ones_like(x[:1, :1]), 0.0)
    counts = F.avg_pool2d(ones, op.kernel, op.strides) * (op.kernel[0] * op.kernel[1])
    return sums / counts


def _axes(axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a + 1 for a in axes)


def _slice(op: ops.Slice, x: torch.Tensor) -> torch.Tensor:
    # index_select per axis: torch slicing has no negative steps.
    for axis, start, stop, step in zip(op.axes, op.starts, op.stops, op.steps, strict=False):
        picked = range(x.shape[axis + 1])[slice(start, stop, step)]
        x = x.index_select(axis + 1, torch.as_tensor(list(picked), dtype=torch.long))
    return x


def _concat(op: ops.Concat, *xs: torch.Tensor) -> torch.Tensor:
    batch = max(x.shape[0] for x in xs)
    return torch.cat([x.expand(batch, *x.shape[1:]) for x in xs], dim=op.axis + 1)


def _pad(op: ops.Pad, x: torch.Tensor) -> torch.Tensor:
    rank = x.dim() - 1
    torch_pads: list[int] = []
    for axis in reversed(range(rank)):
        torch_pads += [op.pads[axis], op.pads[axis + rank]]
    return F.pad(x, torch_pads, value=op.value)


def _clip(op: ops.Clip, x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, min=op.min, max=op.max)


def _constant(op: ops.ConstantOf, *_: Any) -> torch.Tensor:
    return constant(op.value).unsqueeze(0)


def _gather(op: ops.Gather, x: torch.Tensor) -> torch.Tensor:
    idx = torch.as_tensor(op.indices.astype(np.int64), device=x.device)
    flat = torch.index_select(x, op.axis + 1, idx.reshape(-1))
    shape = x.shape[: op.axis + 1] + tuple(idx.shape) + x.shape[op.axis + 2 :]
    return flat.reshape(shape)


CONCRETE = Table(
    "concrete semantics",
    {
        ops.Gemm: _gemm,
        ops.Conv: _conv,
        ops.AddConst: lambda op, x: x + _const(op.value, x),
        ops.MulConst: lambda op, x: x * _const(op.value, x),
        ops.DivConst: lambda op, x: x / _const(op.value, x),
        ops.Neg: lambda op, x: -x,
        ops.Add: lambda op, a, b: a + b,
        ops.Sub: lambda op, a, b: a - b,
        ops.Mul: lambda op, a, b: a * b,
        ops.Div: lambda op, a, b: a / b,
        ops.ConstantOf: _constant,
        ops.Relu: lambda op, x: torch.relu(x),
        ops.LeakyRelu: lambda op, x: torch.where(x >= 0, x, op.alpha * x),
        ops.Sigmoid: lambda op, x: torch.sigmoid(x),
        ops.Tanh: lambda op, x: torch.tanh(x),
        ops.Exp: lambda op, x: torch.exp(x),
        ops.Log: lambda op, x: torch.log(x),
        ops.Sqrt: lambda op, x: torch.sqrt(x),
        ops.Abs: lambda op, x: torch.abs(x),
        ops.Clip: _clip,
        ops.Softmax: lambda op, x: torch.softmax(x, dim=op.axis + 1),
        ops.MaxPool: _maxpool,
        ops.AveragePool: _avgpool,
        ops.ReduceSum: lambda op, x: x.sum(dim=_axes(op.axes), keepdim=op.keepdims),
        ops.ReduceMean: lambda op, x: x.mean(dim=_axes(op.axes), keepdim=op.keepdims),
        ops.Reshape: lambda op, x: x.reshape((x.shape[0],) + tuple(op.shape)),
        ops.Transpose: lambda op, x: x.permute(0, *(p + 1 for p in op.perm)),
        ops.Concat: _concat,
        ops.Slice: _slice,
        ops.Gather: _gather,
        ops.Pad: _pad,
    },
)


def run(graph: Graph, x: torch.Tensor | np.ndarray, *, keep: bool = False) -> Any:
    """Evaluate ``graph`` on a batch ``x`` of shape ``(B, *input_shape)``.

    Returns a torch tensor ``(B, *output_shape)`` (or every value when ``keep``).
    """
    tensor = torch.as_tensor(x)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    return interpret(graph, CONCRETE, {graph.input_name: tensor}, keep=keep)


def evaluate(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Evaluate ``graph`` on one input (no batch axis) in float64; returns a numpy array."""
    array = np.asarray(x, dtype=np.float64)
    if array.shape != graph.input_shape and array.size == graph.input_size:
        array = array.reshape(graph.input_shape)
    with torch.no_grad():
        out = run(graph, torch.from_numpy(array).unsqueeze(0))
    return out[0].numpy()
