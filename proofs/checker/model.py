"""Read an ONNX model into the checker's own layer list, and hash it canonically.

Supported ops and the lowering: FORMAT.md, section 5. A chain of single-input nodes becomes
layers ``affine`` (``y = W x + b``, W dense (m, n)), ``add`` (``y = x + b``), ``scale``
(``y = b * x``), ``relu``; weights are read exactly (float32 -> float64), flattened in C order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from proofs.checker.encoding import Malformed, canonical_json, hex_list, sha256


@dataclass(eq=False)
class Layer:
    """One layer: kind in {"affine", "add", "scale", "relu"}, its constants, derived data."""

    kind: str
    size: int
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    cache: dict = field(default_factory=dict, repr=False)


@dataclass(eq=False)
class Network:
    """The lowered network: ``input_size`` scalars in, layers applied in order."""

    input_size: int
    layers: list[Layer]
    hash: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def output_size(self) -> int:
        """Number of scalar outputs."""
        return self.layers[-1].size if self.layers else self.input_size

    @property
    def relu_layers(self) -> list[int]:
        """Positions (in ``layers``) of the ReLU layers, in order."""
        return [i for i, layer in enumerate(self.layers) if layer.kind == "relu"]


def network_hash(network: Network) -> str:
    """SHA-256 of the canonical JSON of the layer list (see FORMAT.md, "Hashes")."""
    layers = []
    for layer in network.layers:
        entry: dict = {"kind": layer.kind, "size": layer.size}
        if layer.kind == "affine":
            entry.update(cols=int(layer.W.shape[1]), W=hex_list(layer.W))
        if layer.kind != "relu":
            entry["b"] = hex_list(layer.b)
        layers.append(entry)
    return sha256(canonical_json({"input_size": network.input_size, "layers": layers}))


def read_model(data: bytes) -> Network:
    """Lower serialised ONNX ``data`` to a :class:`Network`; Malformed when unsupported."""
    try:
        graph = onnx.load_model_from_string(data).graph
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad model file
        raise Malformed(f"model file is not a readable ONNX model: {exc}") from None
    consts = {tensor.name: _tensor(tensor) for tensor in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise Malformed("the checker needs exactly one model input and one output")
    shape = tuple(max(d.dim_value, 1) for d in inputs[0].type.tensor_type.shape.dim)  # 1: symbolic
    builder = _Builder(inputs[0].name, shape)
    for node in graph.node:
        try:
            builder.node(node, consts)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:
            raise Malformed(f"node {node.name!r} ({node.op_type}): {exc}") from None
    if builder.name != graph.output[0].name:
        raise Malformed(f"model output {graph.output[0].name!r} is not the end of the chain")
    return Network(math.prod(shape), builder.layers, notes=builder.notes)


def _tensor(tensor: object) -> np.ndarray:
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise Malformed(f"tensor {tensor.name!r} uses external data (not read by the checker)")
    array = numpy_helper.to_array(tensor)
    if array.dtype.kind == "f":
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise Malformed(f"tensor {tensor.name!r} holds NaN or Inf")
    return array


def _attrs(node: object) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Builder:
    """Follows the chain from the input, collecting layers (``_<op>``: new shape or None)."""

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape = name, shape
        self.layers: list[Layer] = []
        self.notes: list[str] = []

    def _emit(self, layer: Layer) -> None:
        prev = self.layers[-1] if self.layers else None
        if layer.kind == "add" and prev is not None and prev.kind == "affine" and not prev.b.any():
            prev.b = layer.b  # W x + 0 + c == W x + c exactly
        else:
            self.layers.append(layer)

    def node(self, node: object, consts: dict[str, np.ndarray]) -> None:
        op, where = node.op_type, f"node {node.name or node.output[0]!r} ({node.op_type})"
        if op == "Constant":
            attrs = _attrs(node)
            if "value" not in attrs:
                raise Malformed(f"{where}: only tensor constants are supported")
            consts[node.output[0]] = _tensor(attrs["value"])
            return
        dynamic = [i for i in node.input if i and i not in consts]
        if not dynamic:
            raise Malformed(f"{where}: constant subgraphs are not supported by the checker")
        if dynamic != [self.name] or list(node.input).count(self.name) != 1 or len(node.output) < 1:
            raise Malformed(f"{where}: the checker needs a chain of single-input ops")
        rule = getattr(self, "_" + op.lower(), None)
        if rule is None:
            raise Malformed(f"{where}: op {op} is not supported by the checker")
        shape = rule(node, [consts.get(i) for i in node.input], math.prod(self.shape), where)
        self.shape, self.name = self.shape if shape is None else shape, node.output[0]

    _identity = _dropout = lambda self, *args: None  # nothing changes
    _relu = lambda self, node, others, size, where: self._emit(Layer("relu", size))
    _unsqueeze = lambda self, *args: self._squeeze(*args, insert=True)
    _mul = lambda self, *args: self._add(*args, kind="scale")

    def _flatten(self, node, others, size, where):
        axis = _attrs(node).get("axis", 1)
        axis = axis + len(self.shape) if axis < 0 else axis
        return (math.prod(self.shape[:axis]), math.prod(self.shape[axis:]))

    def _reshape(self, node, others, size, where):
        raw = [int(v) for v in np.asarray(others[1]).reshape(-1)]
        target = [self.shape[i] if v == 0 and i < len(self.shape) else v for i, v in enumerate(raw)]
        if target.count(-1) == 1:
            known = math.prod(v for v in target if v != -1)
            target[target.index(-1)] = size // known if known else 0
        if math.prod(target) != size or min(target, default=1) < 1:
            raise Malformed(f"{where}: cannot reshape {self.shape} to {target}")
        return tuple(target)

    def _squeeze(self, node, others, size, where, insert=False):
        axes = _attrs(node).get("axes")
        if axes is None and len(others) > 1 and others[1] is not None:
            axes = [int(a) for a in np.asarray(others[1]).reshape(-1)]
        if not insert:
            ones = {i for i, d in enumerate(self.shape) if d == 1}
            drop = ones if axes is None else {a % len(self.shape) for a in axes}
            if not drop <= ones:
                raise Malformed(f"{where}: squeezes an axis of {self.shape} that is not 1")
            return tuple(d for i, d in enumerate(self.shape) if i not in drop)
        shape = list(self.shape)
        for a in sorted(a % (len(shape) + len(axes)) for a in axes):
            shape.insert(a, 1)
        return tuple(shape)

    def _broadcast(self, const: np.ndarray, where: str) -> np.ndarray:
        const = np.asarray(const, dtype=np.float64)
        try:
            out = np.broadcast_shapes(self.shape, const.shape)
        except ValueError:
            raise Malformed(f"{where}: constant {const.shape} does not fit {self.shape}") from None
        if tuple(out) != tuple(self.shape):
            raise Malformed(f"{where}: constant {const.shape} would grow {self.shape}")
        return np.broadcast_to(const, self.shape).reshape(-1).astype(np.float64)

    def _add(self, node, others, size, where, kind="add"):
        const = others[1] if others[0] is None else others[0]
        self._emit(Layer(kind, size, b=self._broadcast(const, where)))

    def _sub(self, node, others, size, where):
        if others[0] is None:  # x - c
            return self._add(node, [None, -np.asarray(others[1], dtype=np.float64)], size, where)
        self._emit(Layer("scale", size, b=np.full(size, -1.0)))  # c - x
        self._add(node, others, size, where)

    def _batchnormalization(self, node, others, size, where):
        """Inference BatchNorm as scale then add, folded in float64 (noted as trusted)."""
        if len(self.shape) < 2 or self.shape[0] != 1 or any(o is None for o in others[1:5]):
            raise Malformed(f"{where}: BatchNormalization needs constant parameters")
        gamma, beta, mean, var = (np.asarray(o, dtype=np.float64) for o in others[1:5])
        eps = float(_attrs(node).get("epsilon", 1e-5))
        with np.errstate(all="ignore"):
            s = gamma / np.sqrt(var + eps)
            shift = beta - mean * s
        if not (np.isfinite(s).all() and np.isfinite(shift).all()):
            raise Malformed(f"{where}: BatchNormalization parameters give NaN or Inf")
        per = (1, self.shape[1]) + (1,) * (len(self.shape) - 2)
        self._emit(Layer("scale", size, b=self._broadcast(s.reshape(per), where)))
        self._emit(Layer("add", size, b=self._broadcast(shift.reshape(per), where)))
        self.notes.append(f"{where} folded in float64: the fold's rounding is not covered")

    def _affine(self, W: np.ndarray, b: np.ndarray | None = None) -> None:
        W = np.ascontiguousarray(W, dtype=np.float64)
        b = np.zeros(W.shape[0]) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
        self._emit(Layer("affine", W.shape[0], W=W, b=b))

    def _matmul(self, node, others, size, where):
        W = np.asarray(others[1] if others[0] is None else others[0], dtype=np.float64)
        if others[0] is not None:  # W @ x with W of shape (m, n), x of shape (n,) or (n, 1)
            if W.ndim != 2 or self.shape[1:] not in ((), (1,)) or self.shape[:1] != W.shape[1:]:
                raise Malformed(f"{where}: MatMul(W, x) of {W.shape} by {self.shape}")
            self._affine(W)
            return (W.shape[0],) + self.shape[1:]
        return self._gemm(node, [None, W, None], size, where, {"transB": 0})  # x @ W

    def _gemm(self, node, others, size, where, a=None):
        a = _attrs(node) if a is None else a
        plain = a.get("alpha", 1.0) == a.get("beta", 1.0) == 1.0 and not a.get("transA", 0)
        if not plain or others[0] is not None:  # input A must be the data
            raise Malformed(f"{where}: only Gemm(x, B, C) with alpha = beta = 1 and transA = 0")
        B = np.asarray(others[1], dtype=np.float64)
        W = B if a.get("transB", 0) else B.T
        if len(self.shape) == 0 or math.prod(self.shape[:-1]) != 1:
            raise Malformed(f"{where}: the checker needs a single row vector, got {self.shape}")
        if W.ndim != 2 or W.shape[1] != self.shape[-1]:
            raise Malformed(f"{where}: {node.op_type} of {self.shape} by {B.shape}")
        bias = others[2] if len(others) > 2 else None  # C: one value or one row
        self._affine(W, None if bias is None else np.broadcast_to(bias, (1, W.shape[0])))
        return self.shape[:-1] + (W.shape[0],)

    def _conv(self, node, others, size, where):
        a = _attrs(node)
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise Malformed(f"{where}: only explicit pads are supported")
        kernel = np.asarray(others[1], dtype=np.float64)
        if kernel.ndim != 4 or len(self.shape) != 4 or self.shape[0] != 1:
            raise Malformed(f"{where}: only 2-D Conv on (1, C, H, W)")
        _, c, h, w = self.shape
        out_c, c_per_group, kh, kw = kernel.shape
        group = a.get("group", 1)
        (sh, sw), (dh, dw) = a.get("strides", [1, 1]), a.get("dilations", [1, 1])
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        if c_per_group * group != c or out_c % group:
            raise Malformed(f"{where}: channels do not fit")
        oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
        ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
        if oh <= 0 or ow <= 0:
            raise Malformed(f"{where}: empty output")
        # every (output channel, input channel, kernel row, kernel col, output y, output x)
        o, ci, i, j, y, x = np.indices((out_c, c_per_group, kh, kw, oh, ow))
        row, col = y * sh - top + i * dh, x * sw - left + j * dw
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        channel = o // (out_c // group) * c_per_group + ci
        W = np.zeros((out_c, oh, ow, c, h, w))
        W[tuple(v[inside] for v in (o, y, x, channel, row, col))] = kernel[o, ci, i, j][inside]
        bias = np.zeros(out_c) if len(others) < 3 or others[2] is None else others[2]
        b = np.repeat(np.asarray(bias, dtype=np.float64).reshape(-1), oh * ow)
        self._affine(W.reshape(out_c * oh * ow, c * h * w), b)
        return (1, out_c, oh, ow)
