"""PyTorch importer: a ``torch.nn.Module`` into the IR, through ``torch.fx``.

The module is put in eval mode (BatchNorm uses its running statistics, Dropout is the
identity), traced with ``torch.fx.symbolic_trace`` and its shapes propagated on an
example input with a batch axis of size 1. Each fx node is converted by a table keyed by
module class (``call_module``), function (``call_function``) or method name
(``call_method``). The graph's origin is an ONNX export of the IR (``importers.onnx.export``)
so counterexamples can be replayed on ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from importers.onnx.context import Const, Context, Dyn, Value, float_array
from importers.onnx.elementwise import binary
from importers.onnx.export import export_onnx
from importers.onnx.shapes import concat
from prover.errors import ModelError, ProverError, UnsupportedOperation
from prover.ir import ops
from prover.ir.graph import Graph, ModelOrigin
from prover.ir.passes import canonicalize as _canonicalize

Args = tuple[Any, ...]


# ----------------------------------------------------------------------- helpers


def _dyn(ctx: Context, value: object) -> Dyn:
    if not isinstance(value, Dyn):
        raise ctx.unsupported("an operand that does not depend on the model input")
    return value


def _const(value: object) -> object:
    """Tensors become Const, Python numbers Const scalars; other objects stay."""
    if isinstance(value, torch.Tensor):
        return Const(value.detach().cpu().numpy())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Const(np.asarray(value, dtype=np.float64))
    return value


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _affine_channels(ctx: Context, x: Dyn, factor: np.ndarray, offset: np.ndarray) -> Dyn:
    """``x * factor + offset`` per channel (axis 1 of the torch value)."""
    rank = len(x.onnx_shape)
    if rank < 2 or x.onnx_shape[1] != factor.shape[0]:
        raise ctx.shape_error(f"(N, {factor.shape[0]}, ...)", x.onnx_shape, "channels")
    view = (factor.shape[0],) + (1,) * (rank - 2)
    x = ctx.as_batched(x)
    y = ctx.emit(ops.MulConst(float_array(factor.reshape(view))), [x], True)
    return ctx.emit(ops.AddConst(float_array(offset.reshape(view))), [y], True)


def _reshape(ctx: Context, x: Dyn, target: list[int]) -> Dyn:
    """torch ``view``/``reshape``: -1 inferred; keeps the batch when the target starts with it."""
    resolved = list(target)
    if resolved.count(-1) > 1:
        raise ctx.shape_error("at most one -1", target, "reshape")
    total = math.prod(x.onnx_shape)
    if -1 in resolved:
        known = math.prod(d for d in resolved if d != -1)
        if known == 0 or total % known:
            raise ctx.shape_error(f"a shape with {total} elements", target, "reshape")
        resolved[resolved.index(-1)] = total // known
    keep = x.batched and bool(resolved) and resolved[0] == 1
    return ctx.reshape(x, tuple(resolved), keep)


def _flatten(ctx: Context, x: Dyn, start: int = 0, end: int = -1) -> Dyn:
    shape = x.onnx_shape
    if not shape:
        return ctx.reshape(x, (1,), False)
    start = ctx.axis(start, len(shape), "start_dim")
    end = ctx.axis(end, len(shape), "end_dim")
    out = shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :]
    return ctx.reshape(x, out, x.batched and start >= 1)


def _softmax(ctx: Context, x: Dyn, dim: int | None) -> Dyn:
    if dim is None:
        raise ctx.unsupported("softmax without an explicit dim")
    return ctx.emit(ops.Softmax(ctx.ir_axis(x, dim, "dim")), [x], x.batched)


# ------------------------------------------------------------------- module converters


def _linear(ctx: Context, m: nn.Linear, x: Dyn) -> Dyn:
    weight = m.weight.detach().cpu().numpy()
    bias = np.zeros(weight.shape[0]) if m.bias is None else m.bias.detach().cpu().numpy()
    return ctx.emit(ops.Gemm(float_array(weight), float_array(bias)), [x], x.batched)


def _conv(
    ctx: Context,
    x: Dyn,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: int = 1,
) -> Dyn:
    """``F.conv2d`` semantics (zero padding; "same" puts the odd extra pad at the end)."""
    bias = np.zeros(weight.shape[0]) if bias is None else bias
    kernel, dilation = (weight.shape[2], weight.shape[3]), _pair(dilation)
    if padding == "valid":
        pads = (0, 0, 0, 0)
    elif padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
        pads = (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2)
    else:
        ph, pw = _pair(padding)
        pads = (ph, pw, ph, pw)
    op = ops.Conv(float_array(weight), float_array(bias), _pair(stride), pads, dilation, groups)
    return ctx.emit(op, [ctx.as_batched(x)], True)


def _conv2d(ctx: Context, m: nn.Conv2d, x: Dyn) -> Dyn:
    if m.padding_mode != "zeros":
        raise ctx.unsupported(f"Conv2d padding_mode={m.padding_mode!r}")
    weight = m.weight.detach().cpu().numpy()
    bias = None if m.bias is None else m.bias.detach().cpu().numpy()
    return _conv(ctx, x, weight, bias, m.stride, m.padding, m.dilation, m.groups)


def _conv_fn(
    ctx: Context,
    x: object,
    weight: object,
    bias: object = None,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: int = 1,
) -> Dyn:
    weight, bias = _const(weight), _const(bias)
    if not isinstance(weight, Const) or not isinstance(bias, (Const, type(None))):
        raise ctx.unsupported("conv2d with a model-dependent weight or bias")
    b = None if bias is None else bias.value
    return _conv(ctx, _dyn(ctx, x), weight.value, b, stride, padding, dilation, groups)


def _maxpool_fn(
    ctx: Context,
    x: object,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    dilation: object = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Dyn:
    if return_indices:
        raise ctx.unsupported("max_pool2d with return_indices")
    args = _pool_args(ctx, kernel_size, stride, padding)
    op = ops.MaxPool(dilations=_pair(dilation), ceil_mode=bool(ceil_mode), **args)
    return ctx.emit(op, [ctx.as_batched(_dyn(ctx, x))], True)


def _avgpool_fn(
    ctx: Context,
    x: object,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: object = None,
) -> Dyn:
    if divisor_override is not None:
        raise ctx.unsupported("avg_pool2d with divisor_override")
    args = _pool_args(ctx, kernel_size, stride, padding)
    op = ops.AveragePool(
        count_include_pad=bool(count_include_pad), ceil_mode=bool(ceil_mode), **args
    )
    return ctx.emit(op, [ctx.as_batched(_dyn(ctx, x))], True)


def _batchnorm(ctx: Context, m: nn.modules.batchnorm._BatchNorm, x: Dyn) -> Dyn:
    if m.running_mean is None or m.running_var is None:
        raise ctx.unsupported("BatchNorm without running statistics (track_running_stats=False)")
    mean = m.running_mean.detach().cpu().double().numpy()
    var = m.running_var.detach().cpu().double().numpy()
    scale = np.ones_like(mean) if m.weight is None else m.weight.detach().cpu().double().numpy()
    shift = np.zeros_like(mean) if m.bias is None else m.bias.detach().cpu().double().numpy()
    factor = scale / np.sqrt(var + float(m.eps))
    return _affine_channels(ctx, x, factor, shift - mean * factor)


def _pool_args(ctx: Context, kernel: object, stride: object, padding: object) -> dict:
    kernel = _pair(kernel)
    stride = kernel if stride is None or stride == [] else _pair(stride)
    ph, pw = _pair(padding)
    return {"kernel": kernel, "strides": stride, "pads": (ph, pw, ph, pw)}


def _maxpool(ctx: Context, m: nn.MaxPool2d, x: Dyn) -> Dyn:
    return _maxpool_fn(
        ctx, x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, m.return_indices
    )


def _avgpool(ctx: Context, m: nn.AvgPool2d, x: Dyn) -> Dyn:
    return _avgpool_fn(
        ctx,
        x,
        m.kernel_size,
        m.stride,
        m.padding,
        m.ceil_mode,
        m.count_include_pad,
        m.divisor_override,
    )


def _adaptive_avgpool(ctx: Context, m: nn.AdaptiveAvgPool2d, x: Dyn) -> Dyn:
    x = ctx.as_batched(x)
    if len(x.shape) != 3:
        raise ctx.shape_error("(N, C, H, W)", x.onnx_shape)
    size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * 2
    out = tuple(x.shape[1 + i] if s is None else int(s) for i, s in enumerate(size))
    if out == (1, 1):
        return ctx.emit(ops.ReduceMean((1, 2), keepdims=True), [x], True)
    if x.shape[1] % out[0] or x.shape[2] % out[1]:
        raise ctx.unsupported(f"AdaptiveAvgPool2d to {out} from {x.shape[1:]} (not divisible)")
    kernel = (x.shape[1] // out[0], x.shape[2] // out[1])
    return ctx.emit(ops.AveragePool(kernel, kernel), [x], True)


def _unary(op_class: type[ops.Op]) -> Callable[..., Dyn]:
    def convert(ctx: Context, m: object, x: Dyn) -> Dyn:
        return ctx.emit(op_class(), [x], x.batched)

    return convert


MODULES: dict[type[nn.Module], Callable[..., Dyn]] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.MaxPool2d: _maxpool,
    nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: _adaptive_avgpool,
    nn.ReLU: _unary(ops.Relu),
    nn.Sigmoid: _unary(ops.Sigmoid),
    nn.Tanh: _unary(ops.Tanh),
    nn.LeakyReLU: lambda ctx, m, x: ctx.emit(
        ops.LeakyRelu(float(m.negative_slope)), [x], x.batched
    ),
    nn.Softmax: lambda ctx, m, x: _softmax(ctx, x, m.dim),
    nn.Flatten: lambda ctx, m, x: _flatten(ctx, x, m.start_dim, m.end_dim),
    nn.Identity: lambda ctx, m, x: x,
    nn.Dropout: lambda ctx, m, x: x,
}


# ---------------------------------------------------------------- function converters


def _binary_fn(kind: str) -> Callable[..., Value]:
    def convert(ctx: Context, a: object, b: object, **kwargs: object) -> Value:
        if kwargs.get("alpha", 1) != 1 or kwargs.get("rounding_mode") is not None:
            raise ctx.unsupported(f"{kind} with alpha or rounding_mode")
        a, b = _const(a), _const(b)
        if isinstance(a, Const) and isinstance(b, Const):
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
            return Const(fn[kind](a.value, b.value))
        return binary(ctx, kind, a, b)

    return convert


def _fn_unary(op_class: type[ops.Op]) -> Callable[..., Dyn]:
    def convert(ctx: Context, x: object, *rest: object, **kwargs: object) -> Dyn:
        x = _dyn(ctx, x)
        return ctx.emit(op_class(), [x], x.batched)

    return convert


def _getitem(ctx: Context, value: object, index: object) -> object:
    if isinstance(value, (tuple, list, torch.Size)):
        return value[index]
    raise ctx.unsupported("indexing a tensor")


def _getattr(ctx: Context, value: object, name: str) -> object:
    if isinstance(value, Dyn) and name == "shape":
        return torch.Size(value.onnx_shape)
    raise ctx.unsupported(f"attribute {name!r}")


def _size(ctx: Context, x: Dyn, dim: int | None = None) -> object:
    shape = torch.Size(_dyn(ctx, x).onnx_shape)
    return shape if dim is None else shape[dim]


def _shape_args(args: tuple[object, ...]) -> list[int]:
    if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
        args = tuple(args[0])
    return [int(a) for a in args]


def _permute(ctx: Context, x: Dyn, *dims: object) -> Dyn:
    perm = [ctx.axis(int(d), len(x.onnx_shape), "dim") for d in _shape_args(dims)]
    if x.batched:
        if perm[0] != 0:
            raise ctx.unsupported(f"permutation {perm} moves the batch axis")
        perm = [p - 1 for p in perm[1:]]
    if perm == sorted(perm):
        return x
    return ctx.emit(ops.Transpose(tuple(perm)), [x], x.batched)


def _transpose(ctx: Context, x: Dyn, a: int, b: int) -> Dyn:
    perm = list(range(len(x.onnx_shape)))
    a, b = ctx.axis(a, len(perm), "dim"), ctx.axis(b, len(perm), "dim")
    perm[a], perm[b] = perm[b], perm[a]
    return _permute(ctx, x, *perm)


def _clamp(ctx: Context, x: Dyn, min: float | None = None, max: float | None = None) -> Dyn:
    low = None if min is None else float(min)
    high = None if max is None else float(max)
    return ctx.emit(ops.Clip(low, high), [_dyn(ctx, x)], x.batched)


def _cat(ctx: Context, values: list[object], dim: int = 0) -> Dyn:
    return concat(ctx, [_const(v) for v in values], int(dim))


def _unsqueeze(ctx: Context, x: Dyn, dim: int) -> Dyn:
    out = list(x.onnx_shape)
    out.insert(ctx.axis(dim, len(out) + 1, "dim"), 1)
    return ctx.reshape(x, tuple(out), x.batched)


def _linear_fn(ctx: Context, x: object, weight: object, bias: object = None) -> Dyn:
    x, weight, bias = _dyn(ctx, x), _const(weight), _const(bias)
    if not isinstance(weight, Const) or not isinstance(bias, (Const, type(None))):
        raise ctx.unsupported("linear with a model-dependent weight or bias")
    b = np.zeros(weight.value.shape[0]) if bias is None else bias.value
    return ctx.emit(ops.Gemm(float_array(weight.value), float_array(b)), [x], x.batched)


FUNCTIONS: dict[object, Callable[..., object]] = {
    F.linear: _linear_fn,
    F.conv2d: _conv_fn,
    F.max_pool2d: _maxpool_fn,
    F.avg_pool2d: _avgpool_fn,
    operator.add: _binary_fn("Add"),
    operator.sub: _binary_fn("Sub"),
    operator.mul: _binary_fn("Mul"),
    operator.truediv: _binary_fn("Div"),
    torch.add: _binary_fn("Add"),
    torch.sub: _binary_fn("Sub"),
    torch.mul: _binary_fn("Mul"),
    torch.div: _binary_fn("Div"),
    operator.neg: _fn_unary(ops.Neg),
    torch.neg: _fn_unary(ops.Neg),
    operator.getitem: _getitem,
    getattr: _getattr,
    torch.relu: _fn_unary(ops.Relu),
    F.relu: _fn_unary(ops.Relu),
    torch.sigmoid: _fn_unary(ops.Sigmoid),
    torch.tanh: _fn_unary(ops.Tanh),
    torch.exp: _fn_unary(ops.Exp),
    torch.log: _fn_unary(ops.Log),
    torch.sqrt: _fn_unary(ops.Sqrt),
    torch.abs: _fn_unary(ops.Abs),
    F.leaky_relu: lambda ctx, x, negative_slope=0.01, inplace=False: ctx.emit(
        ops.LeakyRelu(float(negative_slope)), [x], x.batched
    ),
    F.softmax: lambda ctx, x, dim=None, *rest, **kw: _softmax(ctx, _dyn(ctx, x), dim),
    torch.softmax: lambda ctx, x, dim=None, *rest, **kw: _softmax(ctx, _dyn(ctx, x), dim),
    torch.flatten: lambda ctx, x, start_dim=0, end_dim=-1: _flatten(ctx, x, start_dim, end_dim),
    torch.reshape: lambda ctx, x, shape: _reshape(ctx, _dyn(ctx, x), _shape_args((shape,))),
    torch.cat: _cat,
    torch.clamp: _clamp,
    torch.permute: lambda ctx, x, dims: _permute(ctx, x, *dims),
    torch.transpose: _transpose,
    torch.unsqueeze: _unsqueeze,
}

METHODS: dict[str, Callable[..., object]] = {
    "view": lambda ctx, x, *shape: _reshape(ctx, _dyn(ctx, x), _shape_args(shape)),
    "reshape": lambda ctx, x, *shape: _reshape(ctx, _dyn(ctx, x), _shape_args(shape)),
    "flatten": lambda ctx, x, start_dim=0, end_dim=-1: _flatten(ctx, x, start_dim, end_dim),
    "size": _size,
    "relu": _fn_unary(ops.Relu),
    "sigmoid": _fn_unary(ops.Sigmoid),
    "tanh": _fn_unary(ops.Tanh),
    "exp": _fn_unary(ops.Exp),
    "neg": _fn_unary(ops.Neg),
    "abs": _fn_unary(ops.Abs),
    "softmax": lambda ctx, x, dim=None, *rest, **kw: _softmax(ctx, _dyn(ctx, x), dim),
    "add": _binary_fn("Add"),
    "sub": _binary_fn("Sub"),
    "mul": _binary_fn("Mul"),
    "div": _binary_fn("Div"),
    "permute": _permute,
    "transpose": _transpose,
    "unsqueeze": _unsqueeze,
    "clamp": _clamp,
    "contiguous": lambda ctx, x, *args, **kwargs: x,
}


# ------------------------------------------------------------------------------ walk


def _label(gm: torch.fx.GraphModule, node: torch.fx.Node) -> str:
    if node.op == "call_module":
        return type(gm.get_submodule(str(node.target))).__name__
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return str(node.target)


def _convert_node(ctx: Context, gm: torch.fx.GraphModule, node: torch.fx.Node, env: dict) -> object:
    args = torch.fx.node.map_arg(node.args, lambda n: env[n.name])
    kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n.name])
    if node.op == "get_attr":
        value = gm
        for part in str(node.target).split("."):
            value = getattr(value, part)
        return _const(value)
    if node.op == "call_module":
        module = gm.get_submodule(str(node.target))
        converter = MODULES.get(type(module))
        if converter is None:
            names = tuple(cls.__name__ for cls in MODULES)
            raise UnsupportedOperation(type(module).__name__, node.name, names, "PyTorch importer")
        if kwargs or len(args) != 1:
            raise ctx.unsupported("a module called with several arguments")
        return converter(ctx, module, _dyn(ctx, args[0]))
    if node.op == "call_function":
        converter = FUNCTIONS.get(node.target)
        if converter is None:
            names = tuple({getattr(f, "__name__", str(f)) for f in FUNCTIONS})
            raise UnsupportedOperation(ctx.op_type, node.name, names, "PyTorch importer")
        return converter(ctx, *args, **kwargs)
    if node.op == "call_method":
        converter = METHODS.get(str(node.target))
        if converter is None:
            raise UnsupportedOperation(
                f"Tensor.{node.target}", node.name, tuple(METHODS), "PyTorch importer"
            )
        return converter(ctx, *args, **kwargs)
    raise ModelError(f"unexpected fx node {node.name!r} of kind {node.op!r}")


def _trace(module: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as exc:
        raise ModelError(f"cannot trace {type(module).__name__} with torch.fx: {exc}") from None
    return gm


def _check_output_shape(module: nn.Module, example: torch.Tensor, graph: Graph) -> None:
    """Run the module once on the example: its output must have the graph's shape."""
    try:
        with torch.no_grad():
            out = module(example)
    except Exception as exc:
        raise ModelError(
            f"{type(module).__name__} fails on an input of shape {tuple(example.shape)}: {exc}"
        ) from None
    if not isinstance(out, torch.Tensor) or out.numel() != graph.output_size:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(
            f"{type(module).__name__}: the module returns {got}, the imported graph "
            f"computes {graph.output_shape} per sample"
        )


def _example(module: nn.Module, example_input: object, input_shape: object) -> torch.Tensor:
    try:
        param = next(module.parameters())
        dtype = param.dtype if param.is_floating_point() else torch.float32
    except StopIteration:
        dtype = torch.float32
    if example_input is not None:
        tensor = torch.as_tensor(example_input)
        if tensor.dim() == 0 or tensor.shape[0] != 1:
            raise ModelError(
                f"example_input must carry a batch axis of size 1, got shape {tuple(tensor.shape)}"
            )
        return tensor.to(dtype)
    if input_shape is None:
        raise ModelError("importing a torch module needs example_input or input_shape")
    shape = tuple(int(d) for d in input_shape)
    if any(d <= 0 for d in shape):
        raise ModelError(f"input_shape must hold positive dims, got {shape}")
    return torch.zeros((1, *shape), dtype=dtype)


def import_torch(
    module: nn.Module,
    *,
    example_input: object = None,
    input_shape: tuple[int, ...] | None = None,
    canonicalize: bool = True,
) -> Graph:
    """Import a ``torch.nn.Module`` into a validated IR graph.

    Args:
        module: the module (put in eval mode for the import; its mode is restored after).
        example_input: an input with a batch axis of size 1, e.g. ``torch.zeros(1, 3, 8, 8)``.
        input_shape: the input shape without batch axis (instead of ``example_input``).
        canonicalize: run the canonicalising passes.

    Returns:
        The graph; its origin holds an ONNX export of it (input shape ``(1, *shape)``,
        float32) for replay on ONNX Runtime.

    Raises:
        ModelError: not a module, untraceable, missing shape information.
        UnsupportedOperation: a module class, function or method without a converter.
        ShapeError: shapes that do not fit, naming the fx node.
    """
    if not isinstance(module, nn.Module):
        raise ModelError(f"expected a torch.nn.Module, got {type(module).__name__}")
    example = _example(module, example_input, input_shape)
    was_training = module.training
    module.eval()
    try:
        # a bare layer (nn.Linear, nn.BatchNorm2d...) is converted as a whole, not traced into
        root = nn.Sequential(module) if type(module) in MODULES else module
        gm = _trace(root, example)
        graph = _walk(gm, example, type(module).__name__)
        _check_output_shape(module, example, graph)
    finally:
        module.train(was_training)
    exported = export_onnx(graph, dtype="float32").SerializeToString()
    origin = ModelOrigin(
        onnx_bytes=exported,
        onnx_input_name=graph.input_name,
        onnx_input_shape=(1, *graph.input_shape),
        onnx_input_dtype="float32",
        path=None,
        sha256=hashlib.sha256(exported).hexdigest(),
        kind="torch",
    )
    graph = Graph(graph.inputs, graph.nodes, graph.output, graph.name, origin)
    return _canonicalize(graph) if canonicalize else graph


def _walk(gm: torch.fx.GraphModule, example: torch.Tensor, name: str) -> Graph:
    ctx = Context(opset=0)
    env: dict[str, object] = {}
    input_name = None
    output: object = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if input_name is not None:
                raise ModelError(f"{name}: only single-input modules are supported")
            input_name = node.name
            ctx.used.add(node.name)
            env[node.name] = Dyn(node.name, tuple(example.shape[1:]), True)
            continue
        if node.op == "output":
            output = env[node.args[0].name] if isinstance(node.args[0], torch.fx.Node) else None
            break
        ctx.where = ("torch", node.name, _label(gm, node))
        try:
            env[node.name] = _convert_node(ctx, gm, node, env)
        except ProverError:
            raise
        except (TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"{ctx.source}: cannot convert: {exc}") from None
    if not isinstance(output, Dyn):
        raise ModelError(f"{name}: the output must be one tensor that depends on the input")
    ctx.where = ("torch", "output", "output")
    if output.name == input_name:
        output = ctx.emit(ops.Reshape(output.shape), [output], output.batched)
    return Graph(((input_name, env[input_name].shape),), tuple(ctx.nodes), output.name, name)
