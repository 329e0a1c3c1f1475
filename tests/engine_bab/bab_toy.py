"""A small, test-only CROWN bounder for sequential Gemm/ReLU networks.

It lets the branch-and-bound tests run independently of the library's domains (which
are tested on their own). It implements the engine's Bounder protocol: CROWN with the
adaptive lower slope, intermediate bounds by back-substitution, ReLU split constraints
by clamping the pre-activation bounds (infeasible when they cross), and it returns the
linear coefficients ``A x + c`` of each bound. Floating-point error is covered by a
crude relative widening (this is test scaffolding, not the library's rigorous domain).
"""

from __future__ import annotations

import numpy as np
import torch

from prover.engine.leaves import LeafBounds
from prover.ir import ops
from prover.ir.graph import Graph

_WIDEN = 1e-9


def affine_layers(graph: Graph) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """Collapse a sequential graph into affine maps between ReLUs (flat vectors)."""
    n = graph.input_size
    W, b = torch.eye(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    layers, names = [], []
    for node in graph.nodes:
        op = node.op
        if isinstance(op, ops.Gemm):
            w = torch.from_numpy(np.array(op.weight, dtype=np.float64))
            W, b = w @ W, w @ b + torch.from_numpy(np.array(op.bias, dtype=np.float64))
        elif isinstance(op, ops.AddConst):
            size = b.shape[0]
            value = np.broadcast_to(np.asarray(op.value, dtype=np.float64), graph.shapes[node.name])
            b = b + torch.from_numpy(value.reshape(size).copy())
        elif isinstance(op, ops.MulConst):
            value = np.broadcast_to(np.asarray(op.value, dtype=np.float64), graph.shapes[node.name])
            v = torch.from_numpy(value.reshape(-1).copy())
            W, b = v[:, None] * W, v * b
        elif isinstance(op, ops.Neg):
            W, b = -W, -b
        elif isinstance(op, ops.Reshape):
            pass
        elif isinstance(op, ops.Relu):
            layers.append((W, b))
            names.append(node.inputs[0])
            W = torch.eye(W.shape[0], dtype=torch.float64)
            b = torch.zeros(W.shape[0], dtype=torch.float64)
        else:
            raise TypeError(f"toy CROWN does not handle {op.name}")
    layers.append((W, b))
    return layers, names


class ToyCrown:
    """CROWN for sequential Gemm/ReLU graphs, implementing the Bounder protocol."""

    name = "toy-crown"
    rule = "linear"
    supports_splits = True
    supports_alpha = False

    def __init__(self, graph: Graph) -> None:
        self.layers, self.names = affine_layers(graph)

    def bound(
        self, graph, lower, upper, C, *, splits=None, alpha=False, intermediate=None
    ) -> LeafBounds:
        B = lower.shape[0]
        lo, up = lower.reshape(B, -1), upper.reshape(B, -1)
        pre: list[tuple[torch.Tensor, torch.Tensor]] = []
        infeasible = torch.zeros(B, dtype=torch.bool)
        for k, name in enumerate(self.names):
            n = self.layers[k][0].shape[0]
            eye = torch.eye(n, dtype=torch.float64)
            both = torch.cat([eye, -eye]).expand(B, 2 * n, n)
            lb, _, _ = self._backward(both, k, pre, lo, up)
            zl, zu = lb[:, :n], -lb[:, n:]
            if splits is not None and name in splits:
                s = splits[name]
                zl = torch.where(s > 0, torch.clamp(zl, min=0.0), zl)
                zu = torch.where(s < 0, torch.clamp(zu, max=0.0), zu)
            infeasible |= (zl > zu).any(dim=1)
            zu = torch.maximum(zu, zl)
            pre.append((zl, zu))
        Cb = C.expand(B, *C.shape) if C.dim() == 2 else C
        lb, A, c = self._backward(Cb, len(self.names), pre, lo, up)
        return LeafBounds(
            lower=lb,
            A=A,
            c=c,
            infeasible=infeasible,
            intermediate=dict(zip(self.names, pre, strict=False)),
        )

    def _backward(self, lam, k, pre, lo, up):
        """Lower bound of ``lam @ z_k`` (z_k the input of ReLU k, or the output)."""
        W, b = self.layers[k]
        bias = lam @ b
        lam = lam @ W
        for j in range(k - 1, -1, -1):
            zl, zu = pre[j]
            active = zl >= 0
            inactive = zu <= 0
            unstable = ~active & ~inactive
            denom = torch.where(unstable, zu - zl, torch.ones_like(zu))
            up_slope = torch.where(active, 1.0, torch.where(unstable, zu / denom, 0.0))
            up_icpt = torch.where(unstable, -zl * zu / denom, 0.0)
            low_slope = torch.where(active, 1.0, torch.where(unstable & (zu >= -zl), 1.0, 0.0))
            pos, neg = lam.clamp(min=0), lam.clamp(max=0)
            bias = bias + (neg * up_icpt[:, None, :]).sum(-1)
            lam = pos * low_slope[:, None, :] + neg * up_slope[:, None, :]
            W, b = self.layers[j]
            bias = bias + lam @ b
            lam = lam @ W
        center, radius = (lo + up) / 2, (up - lo) / 2
        value = (lam @ center[:, :, None]).squeeze(-1) - (lam.abs() @ radius[:, :, None]).squeeze(
            -1
        )
        lb = value + bias
        lb = lb - _WIDEN * (
            1 + lb.abs() + (lam.abs() @ (lo.abs() + up.abs())[:, :, None]).squeeze(-1)
        )
        return lb, lam, bias


def load_onnx(path: str) -> Graph:
    """The IR graph of an ONNX file: the library's importer when present, else a tiny
    converter for the Sub/Flatten/MatMul/Add/Gemm/Relu chains of the test networks."""
    try:
        from importers import load_model  # type: ignore[attr-defined]
    except ImportError:
        load_model = None
    if load_model is not None:
        return load_model(path)
    return _tiny_onnx(path)


def _tiny_onnx(path: str) -> Graph:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in init]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    shape = tuple(dims[1:]) if len(dims) > 1 else tuple(dims)
    nodes, alias, current = [], {inp.name: "x"}, "x"
    pending = None  # a MatMul waiting for its Add
    for k, node in enumerate(model.graph.node):
        name = f"v{k}"
        src = alias[node.input[0]]
        if node.op_type == "Sub":
            value = -init[node.input[1]].reshape(-1)
            nodes.append(("addc", name, src, value))
        elif node.op_type == "Flatten":
            nodes.append(("flatten", name, src, None))
        elif node.op_type == "MatMul":
            pending = (name, src, init[node.input[1]].T)
            alias[node.output[0]] = name
            continue
        elif node.op_type == "Add" and pending is not None:
            pname, psrc, weight = pending
            nodes.append(("gemm", name, psrc, (weight, init[node.input[1]].reshape(-1))))
            pending = None
        elif node.op_type == "Relu":
            if pending is not None:
                pname, psrc, weight = pending
                nodes.append(("gemm", pname, psrc, (weight, np.zeros(weight.shape[0]))))
                src, pending = pname, None
            nodes.append(("relu", name, src, None))
        else:
            raise TypeError(f"tiny ONNX converter does not handle {node.op_type}")
        alias[node.output[0]] = name
        current = name
    if pending is not None:
        pname, psrc, weight = pending
        nodes.append(("gemm", pname, psrc, (weight, np.zeros(weight.shape[0]))))
        current = pname
    from prover.ir.graph import Node

    ir_nodes, flat = [], int(np.prod(shape))
    for kind, name, src, data in nodes:
        if kind == "addc":
            op = ops.AddConst(np.broadcast_to(data, (flat,)).reshape(shape).copy())
        elif kind == "flatten":
            op = ops.Reshape((flat,))
        elif kind == "gemm":
            op = ops.Gemm(data[0].copy(), data[1].copy())
        else:
            op = ops.Relu()
        ir_nodes.append(Node(name, op, (src,)))
    return Graph((("x", shape),), tuple(ir_nodes), current, name=path)
