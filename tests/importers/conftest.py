"""Shared helpers of the importer tests: tiny ONNX models and an ONNX Runtime oracle."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from importers.onnx import import_onnx
from importers.onnx.export import export_onnx
from prover.semantics import run


def make_model(
    nodes: list[onnx.NodeProto],
    input_shape: list,
    *,
    opset: int = 13,
    inits: dict[str, np.ndarray] | None = None,
    output: str = "y",
    input_name: str = "x",
) -> bytes:
    """Serialise a one-input, one-output model whose output is named ``output``."""
    initializers = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    graph = helper.make_graph(
        nodes,
        "case",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset < 15 else 8
    return model.SerializeToString()


def ort_run(model_bytes: bytes, name: str, x: np.ndarray) -> np.ndarray:
    """Run a model on ONNX Runtime."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run(None, {name: x})[0]


def check_against_ort(
    model_bytes: bytes, *, samples: int = 3, low: float = -2.0, high: float = 2.0, seed: int = 0
):
    """Import ``model_bytes`` (with and without passes) and compare with ONNX Runtime.

    Also exports the imported graph back to ONNX and checks ONNX Runtime on the export.
    Returns the canonical graph.
    """
    canonical = import_onnx(model_bytes)
    raw = import_onnx(model_bytes, canonicalize=False)
    origin = canonical.origin
    rng = np.random.default_rng(seed)
    xs = rng.uniform(low, high, size=(samples, *canonical.input_shape))
    outs = [run(g, xs).numpy() for g in (canonical, raw)]
    exported = export_onnx(raw).SerializeToString()
    for i, x in enumerate(xs):
        feed = x.reshape(origin.onnx_input_shape).astype(origin.onnx_input_dtype)
        expected = ort_run(model_bytes, origin.onnx_input_name, feed).reshape(-1)
        for out in outs:
            np.testing.assert_allclose(out[i].reshape(-1), expected, rtol=1e-4, atol=1e-5)
        replay = ort_run(
            exported, raw.input_name, feed.reshape(1, *raw.input_shape).astype(np.float32)
        )
        np.testing.assert_allclose(replay.reshape(-1), expected, rtol=1e-4, atol=1e-5)
    return canonical


def node(op_type: str, inputs: list[str], outputs: list[str] | None = None, **attrs):
    """``helper.make_node`` with the output defaulting to ``y`` and a readable name."""
    outputs = outputs or ["y"]
    return helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{outputs[0]}", **attrs)


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (fixtures avoid importing conftest)."""
    return SimpleNamespace(
        make_model=make_model, node=node, check=check_against_ort, ort_run=ort_run
    )


@pytest.fixture(autouse=True, scope="module")
def _single_torch_thread():
    """Tiny tensors: one thread avoids thread contention on the shared test machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
