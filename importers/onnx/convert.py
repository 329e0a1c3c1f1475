"""ONNX graph -> IR graph: one table keyed by ONNX op type, one walk over the nodes.

Nodes whose inputs are all constants are evaluated at import with ``onnx.reference``
(shapes are static, so the Shape/Gather/Concat/Unsqueeze chains of PyTorch exports fold
away). Every other node goes through the converter of its op type, which emits IR nodes
in a :class:`~importers.onnx.context.Context`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import onnx
from onnx import helper, numpy_helper

from importers.onnx import elementwise, linear, pooling, shapes
from importers.onnx.context import Const, Context, Dyn, Value
from importers.onnx.reader import LoadedModel
from prover.errors import ModelError, ProverError, UnsupportedOperation
from prover.ir import ops
from prover.ir.graph import Graph, ModelOrigin

logger = logging.getLogger(__name__)

Converter = Callable[[Context, list], list]

#: The converter of every ONNX op type that may depend on the model input.
CONVERTERS: Mapping[str, Converter] = MappingProxyType(
    {
        **elementwise.CONVERTERS,
        **linear.CONVERTERS,
        **pooling.CONVERTERS,
        **shapes.CONVERTERS,
    }
)

#: Op types that never depend on the model input (always folded at import).
CONSTANT_OPS: tuple[str, ...] = ("Constant", "ConstantOfShape", "Range")

_FLOAT_INPUTS = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.FLOAT16: "float16",
}


def supported_ops() -> tuple[str, ...]:
    """Every ONNX op type the importer accepts, sorted."""
    return tuple(sorted(set(CONVERTERS) | set(CONSTANT_OPS)))


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain opset version of ``model``."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelError("model declares no opset for the default ONNX domain")


class _Unknown:
    """Marks values downstream of a node that could not be converted (inspection only)."""


_UNKNOWN = _Unknown()


def _input_spec(loaded: LoadedModel) -> tuple[onnx.ValueInfoProto, tuple[int, ...], bool, str]:
    graph = loaded.model.graph
    constants = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ModelError(f"{loaded.label}: expected exactly one graph input, found {names}")
    if len(graph.output) != 1:
        names = [o.name for o in graph.output]
        raise ModelError(f"{loaded.label}: expected exactly one graph output, found {names}")
    info = inputs[0]
    tensor = info.type.tensor_type
    if not info.type.HasField("tensor_type") or tensor.elem_type not in _FLOAT_INPUTS:
        raise ModelError(f"{loaded.label}: input {info.name!r} must be a float tensor")
    dims = list(tensor.shape.dim)
    symbolic = [not d.HasField("dim_value") or d.dim_value <= 0 for d in dims]
    batched = len(dims) >= 2 and (symbolic[0] or dims[0].dim_value == 1)
    for i, d in enumerate(dims):
        if symbolic[i] and not (i == 0 and batched):
            raise ModelError(
                f"{loaded.label}: input {info.name!r} has a symbolic or unknown dimension "
                f"{d.dim_param or '?'!r} at axis {i}; only the batch axis may be symbolic"
            )
    full = tuple(1 if symbolic[i] else int(d.dim_value) for i, d in enumerate(dims))
    return info, full, batched, _FLOAT_INPUTS[tensor.elem_type]


def _constant_node(node: onnx.NodeProto) -> np.ndarray | None:
    """Fast path for Constant nodes (others go through onnx.reference)."""
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if attribute.name == "value":
            return numpy_helper.to_array(value)
        if attribute.name in ("value_float", "value_floats"):
            return np.asarray(value, dtype=np.float32)
        if attribute.name in ("value_int", "value_ints"):
            return np.asarray(value, dtype=np.int64)
    return None


def _fold(ctx: Context, node: onnx.NodeProto, inputs: list[Value | None]) -> list[Value]:
    """Evaluate a node whose inputs are all constants."""
    if node.op_type == "Constant":
        array = _constant_node(node)
        if array is not None:
            return [Const(array)]
    from onnx.reference import ReferenceEvaluator

    feeds = {name: value.value for name, value in zip(node.input, inputs, strict=True) if name}
    try:
        evaluator = ReferenceEvaluator(node, opsets={"": ctx.opset})
        results = evaluator.run(None, feeds)
    except (NotImplementedError, RuntimeError) as exc:
        if node.op_type in CONVERTERS or node.op_type in CONSTANT_OPS:
            raise ModelError(f"{ctx.source}: cannot evaluate constant node: {exc}") from None
        raise UnsupportedOperation(
            node.op_type, ctx.node_name, supported_ops(), "ONNX importer"
        ) from None
    except Exception as exc:
        raise ModelError(f"{ctx.source}: cannot evaluate constant node: {exc}") from None
    return [Const(np.asarray(r)) for r in results]


def _convert_node(ctx: Context, node: onnx.NodeProto, inputs: list[Value | None]) -> list[Value]:
    try:
        return _dispatch(ctx, node, inputs)
    except ProverError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
        # malformed attributes or operands that no converter check caught
        raise ModelError(f"{ctx.source}: cannot convert ({type(exc).__name__}: {exc})") from None


def _dispatch(ctx: Context, node: onnx.NodeProto, inputs: list[Value | None]) -> list[Value]:
    if node.domain not in ("", "ai.onnx"):
        raise UnsupportedOperation(
            f"{node.domain}.{node.op_type}", ctx.node_name, supported_ops(), "ONNX importer"
        )
    if all(v is None or isinstance(v, Const) for v in inputs):
        return _fold(ctx, node, inputs)
    converter = CONVERTERS.get(node.op_type)
    if converter is None:
        raise UnsupportedOperation(node.op_type, ctx.node_name, supported_ops(), "ONNX importer")
    return converter(ctx, inputs)


def _read_inputs(ctx: Context, env: dict, node: onnx.NodeProto) -> list:
    inputs = []
    for name in node.input:
        if not name:
            inputs.append(None)
        elif name in env:
            inputs.append(env[name])
        else:
            raise ModelError(f"{ctx.source} reads {name!r}, which is not defined before it")
    return inputs


def _start(loaded: LoadedModel) -> tuple[Context, dict, onnx.ValueInfoProto, tuple, bool, str]:
    model = loaded.model
    opset = opset_of(model)
    if not 7 <= opset <= 21:
        logger.warning("%s: opset %d is outside the tested range 7..21", loaded.label, opset)
    info, full, batched, dtype = _input_spec(loaded)
    env: dict[str, object] = {
        t.name: Const(numpy_helper.to_array(t)) for t in model.graph.initializer
    }
    ir_shape = full[1:] if batched else full
    env[info.name] = Dyn(info.name, ir_shape, batched)
    ctx = Context(opset)
    ctx.used.add(info.name)
    return ctx, env, info, full, batched, dtype


def convert(loaded: LoadedModel) -> Graph:
    """Convert a loaded model into an (uncanonicalised) IR graph.

    Raises:
        ModelError: several inputs or outputs, symbolic dims, malformed graph.
        UnsupportedOperation: an op type (or a feature of an op) the importer cannot express.
        ShapeError: shapes that do not fit, naming the ONNX node.
        InvalidWeightsError: NaN or Inf in a constant an op uses.
    """
    ctx, env, info, full, batched, dtype = _start(loaded)
    for node in loaded.model.graph.node:
        ctx.start(node)
        outputs = _convert_node(ctx, node, _read_inputs(ctx, env, node))
        for name, value in zip(node.output, outputs, strict=False):
            if name:
                env[name] = value
    output_name = loaded.model.graph.output[0].name
    if output_name not in env:
        raise ModelError(f"{loaded.label}: graph output {output_name!r} is never computed")
    out = env[output_name]
    ctx.node = None
    if isinstance(out, Const):
        out = ctx.constant(np.asarray(out.value, np.float64))
    elif out.name == info.name:
        out = ctx.emit(ops.Reshape(out.shape), [out], out.batched)
    origin = ModelOrigin(
        onnx_bytes=loaded.onnx_bytes,
        onnx_input_name=info.name,
        onnx_input_shape=full,
        onnx_input_dtype=dtype,
        path=loaded.path,
        sha256=loaded.sha256,
        kind="onnx",
    )
    name = loaded.model.graph.name or (Path(loaded.path).stem if loaded.path else "model")
    return Graph(((info.name, env[info.name].shape),), tuple(ctx.nodes), out.name, name, origin)


def inspect(loaded: LoadedModel) -> list[dict]:
    """Per ONNX node: name, op_type, shape (IR shape, None if unknown), constant,
    supported, error (the message if its conversion failed).

    Never raises for a node: nodes downstream of a failure get an unknown shape.
    """
    try:
        ctx, env, _, _, _, _ = _start(loaded)
    except ModelError:  # e.g. several inputs: still report every node, shapes unknown
        graph = loaded.model.graph
        ctx = Context(opset_of(loaded.model))
        env = {t.name: Const(numpy_helper.to_array(t)) for t in graph.initializer}
        for info in graph.input:
            env.setdefault(info.name, _UNKNOWN)
    table = set(supported_ops())
    rows = []
    for node in loaded.model.graph.node:
        ctx.start(node)
        row = {
            "name": ctx.node_name,
            "op_type": node.op_type,
            "shape": None,
            "constant": False,
            "supported": node.op_type in table,
            "error": None,
        }
        try:
            inputs = _read_inputs(ctx, env, node)
            if any(v is _UNKNOWN for v in inputs):
                outputs: list = [_UNKNOWN] * len(node.output)
            else:
                outputs = _convert_node(ctx, node, inputs)
                row["supported"] = True
        except ProverError as exc:
            if isinstance(exc, UnsupportedOperation) and node.op_type not in table:
                row["supported"] = False
            row["error"] = str(exc)
            outputs = [_UNKNOWN] * len(node.output)
        first = outputs[0] if outputs else _UNKNOWN
        if isinstance(first, Dyn):
            row["shape"] = first.shape
        elif isinstance(first, Const):
            row["shape"], row["constant"] = tuple(first.value.shape), True
        for name, value in zip(node.output, outputs, strict=False):
            if name:
                env[name] = value
        rows.append(row)
    return rows
