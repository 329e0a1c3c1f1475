"""Fold a per-channel ``MulConst``/``AddConst`` into the preceding ``Conv`` or ``Gemm``.

This is how BatchNormalization (imported as ``MulConst(f) + AddConst(t)`` along the
channel axis) disappears into the convolution or linear layer before it. The Conv/Gemm
output must be read only by the folded op, and the constant must vary only along the
output channels (axis 0 of a Conv's (C, H, W) output, the last axis of a Gemm's output).

Equivalence: over the reals, ``(x * W + b) * f == x * (W f) + b f`` and
``(x * W + b) + t == x * W + (b + t)``. The new weights are float64 roundings of the real
products (exact when both factors are float32 numbers, relative error <= 2**-53 otherwise).
"""

from __future__ import annotations

import numpy as np

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.ir.passes.common import fuse_into_sole_consumer
from prover.ir.passes.fuse_gemm_add import last_axis_vector

#: Whether the rewrite keeps the function bit for bit (see the module docstring).
EXACT = False


def _conv_channel_vector(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as one number per output channel of a (C, H, W) value, if it is one."""
    padded = value.reshape((1,) * (3 - value.ndim) + value.shape)
    if padded.shape[1:] != (1, 1):
        return None
    return np.broadcast_to(padded.reshape(-1), (shape[0],))


def _fold(layer: ops.Op, affine: ops.Op, shape: tuple[int, ...]) -> ops.Op | None:
    if isinstance(layer, ops.Gemm):
        vector = last_axis_vector(affine.value, shape)
    else:
        vector = _conv_channel_vector(affine.value, shape)
    if vector is None:
        return None
    if isinstance(affine, ops.AddConst):
        weight, bias = layer.weight, layer.bias + vector
    else:
        view = vector.reshape((-1,) + (1,) * (layer.weight.ndim - 1))
        weight, bias = layer.weight * view, layer.bias * vector
    if isinstance(layer, ops.Gemm):
        return ops.Gemm(ops.frozen_array(weight), ops.frozen_array(bias))
    return ops.Conv(
        ops.frozen_array(weight),
        ops.frozen_array(bias),
        layer.strides,
        layer.pads,
        layer.dilations,
        layer.group,
    )


def run(graph: Graph) -> Graph:
    """Fold per-channel scales and shifts into Conv/Gemm (see the module docstring)."""

    def fuse(node: Node, follower: Node) -> ops.Op | None:
        if not isinstance(node.op, (ops.Gemm, ops.Conv)):
            return None
        if type(follower.op) not in (ops.MulConst, ops.AddConst):
            return None
        return _fold(node.op, follower.op, graph.shapes[node.name])

    return fuse_into_sole_consumer(graph, fuse)
