"""Tiny ONNX models for the whole-model property tests, built with onnx.helper."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from prover.api import load


def onnx_bytes(nodes, n_in: int, n_out: int, inits: dict | None = None) -> bytes:
    """A model with input ``x`` of shape (1, n_in) and output ``y`` of shape (1, n_out)."""
    initializers = [
        numpy_helper.from_array(np.asarray(v, dtype=np.float32), k)
        for k, v in (inits or {}).items()
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def mlp_bytes(weights: list[tuple[np.ndarray, np.ndarray]], final: str | None = None) -> bytes:
    """Gemm/Relu layers (no Relu after the last Gemm), then an optional ``final`` op."""
    nodes, inits, current = [], {}, "x"
    for k, (w, b) in enumerate(weights):
        inits[f"w{k}"], inits[f"b{k}"] = w, b
        out = f"g{k}"
        nodes.append(helper.make_node("Gemm", [current, f"w{k}", f"b{k}"], [out], transB=1))
        current = out
        if k < len(weights) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"r{k}"]))
            current = f"r{k}"
    if final is None:
        nodes.append(helper.make_node("Identity", [current], ["y"]))
    elif final == "Softmax":
        nodes.append(helper.make_node("Softmax", [current], ["y"], axis=1))
    else:
        nodes.append(helper.make_node(final, [current], ["y"]))
    return onnx_bytes(nodes, weights[0][0].shape[1], weights[-1][0].shape[0], inits)


def random_mlp(seed: int, sizes: tuple[int, ...], final: str | None = None, scale: float = 1.0):
    """(graph, onnx bytes) of a random MLP with float32-exact weights."""
    rng = np.random.default_rng(seed)
    weights = [
        (
            (scale * rng.normal(size=(b, a))).astype(np.float32),
            (scale * rng.normal(size=b)).astype(np.float32),
        )
        for a, b in zip(sizes[:-1], sizes[1:], strict=False)
    ]
    data = mlp_bytes(weights, final)
    return load(data), data


def ort_run(data: bytes, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's output (flat float64) for one input."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.asarray(x, dtype=np.float32).reshape(1, -1)})
    return np.asarray(y, dtype=np.float64).reshape(-1)
