"""Value bounds that hold for every real input: the ranges of the ops.

When a property is claimed over all of R^n (region None) there is no input box for the
interval domain. These rules bound each value by what the op guarantees whatever its
input: ``sigmoid`` in [0, 1], ``tanh`` in [-1, 1], ``softmax`` in [0, 1], ``relu``,
``exp`` and ``abs`` non-negative, ``clip`` within its limits; structural ops move their
inputs' bounds exactly; everything else is ``[-inf, inf]``.
"""

from __future__ import annotations

import math

import torch

from domains.interval.element import Interval
from prover.ir import ops
from prover.ir.interpreter import Table
from prover.semantics import CONCRETE
from prover.tensors import constant


def _shape_of(op: ops.Op, xs: tuple[Interval, ...]) -> tuple[tuple[int, ...], int, torch.Tensor]:
    shape = tuple(op.infer_shape(*(x.shape for x in xs)))
    batch = max((x.batch for x in xs), default=1)
    like = xs[0].lower if xs else torch.zeros(())
    return shape, batch, like


def _const_range(lo: float, hi: float):
    def rule(op: ops.Op, *xs: Interval) -> Interval:
        shape, batch, like = _shape_of(op, xs)
        full = (batch,) + shape
        return Interval(
            torch.full(full, lo, dtype=torch.float64, device=like.device),
            torch.full(full, hi, dtype=torch.float64, device=like.device),
        )

    rule.__doc__ = f"Soundness: the op's range lies in [{lo}, {hi}] for every real input."
    return rule


def _monotone(op: ops.Op, *xs: Interval) -> Interval:
    """Soundness: relu, clip, max pooling and structural ops are exact and nondecreasing
    in every input (also at infinite bounds), so they map the bounds."""
    rule = CONCRETE.rules[type(op)]
    return Interval(rule(op, *(x.lower for x in xs)), rule(op, *(x.upper for x in xs)))


def _constant(op: ops.ConstantOf) -> Interval:
    """Soundness: a constant is its own exact interval."""
    value = constant(op.value).unsqueeze(0)
    return Interval(value, value)


_UNBOUNDED = _const_range(-math.inf, math.inf)

RANGES = Table(
    "op ranges",
    {
        **{cls: _UNBOUNDED for cls in ops.ALL_OPS},
        ops.ConstantOf: _constant,
        ops.Sigmoid: _const_range(0.0, 1.0),
        ops.Tanh: _const_range(-1.0, 1.0),
        ops.Softmax: _const_range(0.0, 1.0),
        ops.Exp: _const_range(0.0, math.inf),
        ops.Abs: _const_range(0.0, math.inf),
        ops.Relu: _monotone,
        ops.Clip: _monotone,
        ops.MaxPool: _monotone,
        ops.Reshape: _monotone,
        ops.Transpose: _monotone,
        ops.Concat: _monotone,
        ops.Slice: _monotone,
        ops.Gather: _monotone,
        ops.Pad: _monotone,
    },
)
