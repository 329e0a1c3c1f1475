"""Read an ONNX model into the checker's own layer list, and hash it canonically.

The checker understands feed-forward ReLU networks that form a chain from the single
input to the single output: Gemm, MatMul (either operand constant, including
``MatMul(W, x)`` with a 1-D input), Add/Sub/Mul with a constant, Conv (expanded to a
dense matrix), Relu, and the shape-only ops Flatten, Reshape, Squeeze, Unsqueeze,
Identity, Dropout. Weights are read exactly (float32 -> float64 is exact). Layers:

* ``affine``: ``y = W x + b`` (W dense, shape (m, n)),
* ``add``: ``y = x + b``,  ``scale``: ``y = s * x`` (element-wise),
* ``relu``: ``y = max(x, 0)``.

A MatMul whose result has an all-zero bias, followed by an Add of a constant, becomes one
``affine`` layer (exact). Nothing else is merged, so the list is canonical and its hash
(:func:`network_hash`) is a pure function of the stored weights. Values are flattened in
C order; the batch axis, if the model has one, must be 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from proofs.checker.encoding import Malformed, canonical_json, hex_list, sha256

try:  # onnx is the only third-party reader the checker uses
    import onnx
    from onnx import numpy_helper
except ImportError:  # pragma: no cover - onnx is a dependency
    onnx = None

_FLOATS = {1: np.float32, 10: np.float16, 11: np.float64}


@dataclass(eq=False)
class Layer:
    """One layer: kind in {"affine", "add", "scale", "relu"} and its constants."""

    kind: str
    size: int
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    _exact: tuple | None = field(default=None, repr=False)
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

    def canonical(self) -> dict:
        """The canonical JSON-able description that :func:`network_hash` digests."""
        layers = []
        for layer in self.layers:
            entry: dict = {"kind": layer.kind, "size": layer.size}
            if layer.kind == "affine":
                entry["cols"] = int(layer.W.shape[1])
                entry["W"] = hex_list(layer.W)
            if layer.kind in ("affine", "add", "scale"):
                entry["b"] = hex_list(layer.b)
            layers.append(entry)
        return {"input_size": self.input_size, "layers": layers}

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Plain float64 evaluation (not rigorous; for cross-checks only)."""
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        for layer in self.layers:
            if layer.kind == "affine":
                v = layer.W @ v + layer.b
            elif layer.kind == "add":
                v = v + layer.b
            elif layer.kind == "scale":
                v = v * layer.b
            else:
                v = np.maximum(v, 0.0)
        return v


def network_hash(network: Network) -> str:
    """SHA-256 of the canonical JSON of the layer list (see FORMAT.md, "Hashes")."""
    return sha256(canonical_json(network.canonical()))


def read_model(data: bytes) -> Network:
    """Lower serialised ONNX ``data`` to a :class:`Network`; Malformed when unsupported."""
    if onnx is None:  # pragma: no cover
        raise Malformed("the onnx package is needed to read models")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad model file
        raise Malformed(f"model file is not a readable ONNX model: {exc}") from None
    graph = model.graph
    consts: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        consts[tensor.name] = _tensor(tensor)
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise Malformed("the checker needs exactly one model input and one output")
    shape = []
    for dim in inputs[0].type.tensor_type.shape.dim:
        shape.append(dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else 1)
    builder = _Builder(inputs[0].name, tuple(shape))
    for node in graph.node:
        try:
            builder.node(node, consts)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError) as exc:
            raise Malformed(f"node {node.name!r} ({node.op_type}): {exc}") from None
    if builder.name != graph.output[0].name:
        raise Malformed(f"model output {graph.output[0].name!r} is not the end of the chain")
    return Network(math.prod(shape), builder.finish(), notes=builder.notes)


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
    """Follows the chain of values from the input, collecting layers."""

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape = name, shape
        self.layers: list[Layer] = []
        self.notes: list[str] = []

    def finish(self) -> list[Layer]:
        return self.layers

    def _emit(self, layer: Layer) -> None:
        prev = self.layers[-1] if self.layers else None
        if layer.kind == "add" and prev is not None and prev.kind == "affine":
            if not prev.b.any():  # W x + 0 + c == W x + c exactly
                prev.b = layer.b
                return
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
        size = math.prod(self.shape)
        rule = getattr(self, "_" + op.lower(), None)
        if rule is None:
            raise Malformed(f"{where}: op {op} is not supported by the checker")
        others = [consts.get(i) for i in node.input]
        self.shape = rule(node, others, size, where)
        self.name = node.output[0]

    # -- shape-only ops ---------------------------------------------------------------
    def _identity(self, node, others, size, where):
        return self.shape

    _dropout = _identity

    def _flatten(self, node, others, size, where):
        axis = _attrs(node).get("axis", 1)
        axis = axis + len(self.shape) if axis < 0 else axis
        return (math.prod(self.shape[:axis]), math.prod(self.shape[axis:]))

    def _reshape(self, node, others, size, where):
        target = [int(v) for v in np.asarray(others[1]).reshape(-1)]
        rank = len(self.shape)
        target = [self.shape[i] if v == 0 and i < rank else v for i, v in enumerate(target)]
        if target.count(-1) == 1:
            known = math.prod(v for v in target if v != -1)
            target[target.index(-1)] = size // known if known else 0
        if math.prod(target) != size or min(target, default=1) < 1:
            raise Malformed(f"{where}: cannot reshape {self.shape} to {target}")
        return tuple(target)

    def _squeeze(self, node, others, size, where):
        axes = _attrs(node).get("axes")
        if axes is None and len(others) > 1 and others[1] is not None:
            axes = [int(a) for a in np.asarray(others[1]).reshape(-1)]
        rank = len(self.shape)
        if axes is None:
            return tuple(d for d in self.shape if d != 1)
        axes = {a % rank for a in axes}
        return tuple(d for i, d in enumerate(self.shape) if i not in axes)

    def _unsqueeze(self, node, others, size, where):
        axes = _attrs(node).get("axes")
        if axes is None:
            axes = [int(a) for a in np.asarray(others[1]).reshape(-1)]
        shape = list(self.shape)
        rank = len(shape) + len(axes)
        for a in sorted(a % rank for a in axes):
            shape.insert(a, 1)
        return tuple(shape)

    # -- element-wise with a constant -------------------------------------------------
    def _broadcast(self, const: np.ndarray, where: str) -> np.ndarray:
        const = np.asarray(const, dtype=np.float64)
        try:
            out = np.broadcast_shapes(self.shape, const.shape)
        except ValueError:
            raise Malformed(f"{where}: constant {const.shape} does not fit {self.shape}") from None
        if tuple(out) != tuple(self.shape):
            raise Malformed(f"{where}: constant {const.shape} would grow {self.shape}")
        return np.broadcast_to(const, self.shape).reshape(-1).astype(np.float64)

    def _add(self, node, others, size, where):
        const = others[1] if others[0] is None else others[0]
        self._emit(Layer("add", size, b=self._broadcast(const, where)))
        return self.shape

    def _sub(self, node, others, size, where):
        if others[0] is None:  # x - c
            self._emit(Layer("add", size, b=-self._broadcast(others[1], where)))
        else:  # c - x
            self._emit(Layer("scale", size, b=np.full(size, -1.0)))
            self._emit(Layer("add", size, b=self._broadcast(others[0], where)))
        return self.shape

    def _mul(self, node, others, size, where):
        const = others[1] if others[0] is None else others[0]
        self._emit(Layer("scale", size, b=self._broadcast(const, where)))
        return self.shape

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
        return self.shape

    def _relu(self, node, others, size, where):
        self._emit(Layer("relu", size))
        return self.shape

    # -- linear maps ------------------------------------------------------------------
    def _affine(self, W: np.ndarray, b: np.ndarray | None, where: str) -> None:
        W = np.ascontiguousarray(W, dtype=np.float64)
        if b is None:
            b = np.zeros(W.shape[0])
        self._emit(Layer("affine", W.shape[0], W=W, b=np.asarray(b, dtype=np.float64)))

    def _rowvec(self, where: str) -> int:
        if len(self.shape) == 0 or math.prod(self.shape[:-1]) != 1:
            raise Malformed(f"{where}: the checker needs a single row vector, got {self.shape}")
        return self.shape[-1]

    def _matmul(self, node, others, size, where):
        if others[0] is None:  # x @ W
            W = np.asarray(others[1], dtype=np.float64)
            n = self._rowvec(where)
            if W.ndim != 2 or W.shape[0] != n:
                raise Malformed(f"{where}: MatMul of {self.shape} by {W.shape}")
            self._affine(W.T, None, where)
            return self.shape[:-1] + (W.shape[1],)
        W = np.asarray(others[0], dtype=np.float64)  # W @ x with x a column
        if W.ndim != 2 or len(self.shape) not in (1, 2) or self.shape[0] != W.shape[1]:
            raise Malformed(f"{where}: MatMul of {W.shape} by {self.shape}")
        if len(self.shape) == 2 and self.shape[1] != 1:
            raise Malformed(f"{where}: MatMul(W, x) needs x of shape (n,) or (n, 1)")
        self._affine(W, None, where)
        return (W.shape[0],) + self.shape[1:]

    def _gemm(self, node, others, size, where):
        a = _attrs(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            raise Malformed(f"{where}: only Gemm with alpha = beta = 1 and transA = 0")
        if others[0] is not None:
            raise Malformed(f"{where}: Gemm input A must be the data")
        B = np.asarray(others[1], dtype=np.float64)
        W = B if a.get("transB", 0) else B.T
        n = self._rowvec(where)
        if W.ndim != 2 or W.shape[1] != n:
            raise Malformed(f"{where}: Gemm of {self.shape} by {B.shape}")
        bias = None
        if len(others) > 2 and others[2] is not None:
            bias = np.broadcast_to(np.asarray(others[2], dtype=np.float64), (1, W.shape[0]))
            bias = bias.reshape(-1)
        self._affine(W, bias, where)
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
        sh, sw = a.get("strides", [1, 1])
        dh, dw = a.get("dilations", [1, 1])
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        if c_per_group * group != c or out_c % group:
            raise Malformed(f"{where}: channels do not fit")
        oh = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
        ow = (w + left + right - dw * (kw - 1) - 1) // sw + 1
        if oh <= 0 or ow <= 0:
            raise Malformed(f"{where}: empty output")
        W = np.zeros((out_c, oh, ow, c, h, w))
        per = out_c // group
        for o in range(out_c):
            g = o // per
            for ci in range(c_per_group):
                for i in range(kh):
                    for j in range(kw):
                        for y in range(oh):
                            row = y * sh - top + i * dh
                            if not 0 <= row < h:
                                continue
                            for x in range(ow):
                                col = x * sw - left + j * dw
                                if 0 <= col < w:
                                    W[o, y, x, g * c_per_group + ci, row, col] = kernel[o, ci, i, j]
        bias = np.zeros(out_c) if len(others) < 3 or others[2] is None else others[2]
        b = np.repeat(np.asarray(bias, dtype=np.float64).reshape(-1), oh * ow)
        self._affine(W.reshape(out_c * oh * ow, c * h * w), b, where)
        return (1, out_c, oh, ow)
