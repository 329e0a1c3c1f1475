"""IR graph -> ONNX model, one table keyed by IR op class.

Used to give models imported from PyTorch an ONNX twin that ONNX Runtime can run, so
counterexamples are replayed by an executor independent of ours. The exported model has
one input of shape ``(1, *input_shape)`` (the batch axis of size 1 restored) and computes
in ``dtype`` (float32 by default, like the PyTorch module it came from).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from prover.errors import UnsupportedOperation
from prover.ir import ops
from prover.ir.graph import Graph, Node

OPSET = 17
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


class _Builder:
    """Collects ONNX nodes and initializers."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, value: object, hint: str, dtype: object = None) -> str:
        array = np.asarray(value, dtype=dtype or self.dtype)
        self.count += 1
        name = f"{hint}__c{self.count}"
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def ints(self, value: object, hint: str) -> str:
        return self.const(np.asarray(value, dtype=np.int64), hint, np.int64)

    def add(self, op_type: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.count += 1
        self.nodes.append(
            helper.make_node(op_type, inputs, [output], name=f"{output}__n{self.count}", **attrs)
        )
        return output

    def temp(self, hint: str) -> str:
        self.count += 1
        return f"{hint}__t{self.count}"


Exporter = Callable[[_Builder, ops.Op, list[str], str], None]


def _gemm(b: _Builder, op: ops.Gemm, xs: list[str], out: str) -> None:
    product = b.add("MatMul", [xs[0], b.const(op.weight.T, out)], b.temp(out))
    b.add("Add", [product, b.const(op.bias, out)], out)


def _conv(b: _Builder, op: ops.Conv, xs: list[str], out: str) -> None:
    inputs = [xs[0], b.const(op.weight, out), b.const(op.bias, out)]
    b.add(
        "Conv",
        inputs,
        out,
        strides=list(op.strides),
        pads=list(op.pads),
        dilations=list(op.dilations),
        group=op.group,
        kernel_shape=list(op.weight.shape[2:]),
    )


def _binary_const(kind: str) -> Exporter:
    def export(b: _Builder, op: ops.Op, xs: list[str], out: str) -> None:
        b.add(kind, [xs[0], b.const(op.value, out)], out)

    return export


def _plain(kind: str, **fixed: object) -> Exporter:
    def export(b: _Builder, op: ops.Op, xs: list[str], out: str) -> None:
        b.add(kind, list(xs), out, **fixed)

    return export


def _constant(b: _Builder, op: ops.ConstantOf, xs: list[str], out: str) -> None:
    b.add("Identity", [b.const(op.value.reshape((1, *op.value.shape)), out)], out)


def _clip(b: _Builder, op: ops.Clip, xs: list[str], out: str) -> None:
    low = "" if op.min is None else b.const(op.min, out)
    high = "" if op.max is None else b.const(op.max, out)
    b.add("Clip", [xs[0], low, high], out)


def _pool_attrs(op: ops.MaxPool | ops.AveragePool) -> dict:
    return {
        "kernel_shape": list(op.kernel),
        "strides": list(op.strides),
        "pads": list(op.pads),
        "ceil_mode": int(op.ceil_mode),
    }


def _maxpool(b: _Builder, op: ops.MaxPool, xs: list[str], out: str) -> None:
    b.add("MaxPool", xs, out, dilations=list(op.dilations), **_pool_attrs(op))


def _avgpool(b: _Builder, op: ops.AveragePool, xs: list[str], out: str) -> None:
    if op.dilations != (1, 1):
        raise UnsupportedOperation("AveragePool", out, (), "ONNX export: dilated AveragePool")
    b.add("AveragePool", xs, out, count_include_pad=int(op.count_include_pad), **_pool_attrs(op))


def _reduce(b: _Builder, op: ops.ReduceSum, xs: list[str], out: str) -> None:
    axes = [a + 1 for a in op.axes]
    if isinstance(op, ops.ReduceMean):
        b.add("ReduceMean", xs, out, axes=axes, keepdims=int(op.keepdims))
    else:
        b.add("ReduceSum", [xs[0], b.ints(axes, out)], out, keepdims=int(op.keepdims))


def _slice(b: _Builder, op: ops.Slice, xs: list[str], out: str) -> None:
    stops = [
        (_INT64_MAX if step > 0 else _INT64_MIN) if stop is None else stop
        for stop, step in zip(op.stops, op.steps, strict=True)
    ]
    inputs = [
        xs[0],
        b.ints(op.starts, out),
        b.ints(stops, out),
        b.ints([a + 1 for a in op.axes], out),
        b.ints(op.steps, out),
    ]
    b.add("Slice", inputs, out)


def _pad(b: _Builder, op: ops.Pad, xs: list[str], out: str) -> None:
    rank = len(op.pads) // 2
    pads = [0, *op.pads[:rank], 0, *op.pads[rank:]]
    b.add("Pad", [xs[0], b.ints(pads, out), b.const(op.value, out)], out, mode="constant")


#: How each IR op class is written in ONNX (values carry a leading batch axis of size 1).
EXPORTERS: dict[type[ops.Op], Exporter] = {
    ops.Gemm: _gemm,
    ops.Conv: _conv,
    ops.AddConst: _binary_const("Add"),
    ops.MulConst: _binary_const("Mul"),
    ops.DivConst: _binary_const("Div"),
    ops.Neg: _plain("Neg"),
    ops.Add: _plain("Add"),
    ops.Sub: _plain("Sub"),
    ops.Mul: _plain("Mul"),
    ops.Div: _plain("Div"),
    ops.ConstantOf: _constant,
    ops.Relu: _plain("Relu"),
    ops.LeakyRelu: lambda b, op, xs, out: b.add("LeakyRelu", xs, out, alpha=float(op.alpha)),
    ops.Sigmoid: _plain("Sigmoid"),
    ops.Tanh: _plain("Tanh"),
    ops.Exp: _plain("Exp"),
    ops.Log: _plain("Log"),
    ops.Sqrt: _plain("Sqrt"),
    ops.Abs: _plain("Abs"),
    ops.Clip: _clip,
    ops.Softmax: lambda b, op, xs, out: b.add("Softmax", xs, out, axis=op.axis + 1),
    ops.MaxPool: _maxpool,
    ops.AveragePool: _avgpool,
    ops.ReduceSum: _reduce,
    ops.ReduceMean: _reduce,
    ops.Reshape: lambda b, op, xs, out: b.add("Reshape", [xs[0], b.ints((1, *op.shape), out)], out),
    ops.Transpose: lambda b, op, xs, out: b.add(
        "Transpose", xs, out, perm=[0, *(p + 1 for p in op.perm)]
    ),
    ops.Concat: lambda b, op, xs, out: b.add("Concat", xs, out, axis=op.axis + 1),
    ops.Slice: _slice,
    ops.Gather: lambda b, op, xs, out: b.add(
        "Gather", [xs[0], b.ints(op.indices.astype(np.int64), out)], out, axis=op.axis + 1
    ),
    ops.Pad: _pad,
}


def _export_node(b: _Builder, node: Node) -> None:
    exporter = EXPORTERS.get(type(node.op))
    if exporter is None:
        raise UnsupportedOperation(
            node.op.name,
            node.source or node.name,
            tuple(cls.__name__ for cls in EXPORTERS),
            "ONNX export",
        )
    exporter(b, node.op, list(node.inputs), node.name)


def export_onnx(graph: Graph, *, dtype: str = "float32") -> onnx.ModelProto:
    """Write ``graph`` as an ONNX model (opset 17) with a batch axis of size 1.

    Args:
        graph: a single-input graph.
        dtype: "float32" or "float64": the element type of the input, weights and values.

    Raises:
        UnsupportedOperation: an op without an exporter.
    """
    elem = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[dtype]
    b = _Builder(np.dtype(dtype))
    for node in graph.nodes:
        _export_node(b, node)
    name = graph.input_name
    inputs = [helper.make_tensor_value_info(name, elem, [1, *graph.input_shape])]
    outputs = [helper.make_tensor_value_info(graph.output, elem, [1, *graph.output_shape])]
    onnx_graph = helper.make_graph(b.nodes, graph.name or "model", inputs, outputs, b.initializers)
    model = helper.make_model(
        onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="certnn-prover"
    )
    model.ir_version = 8
    return model
