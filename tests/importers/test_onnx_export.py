"""IR -> ONNX export: every IR op has an exporter, and ONNX Runtime on the export computes
what the concrete semantics computes (the importer tests cover each op on real models)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from importers.onnx import import_onnx
from importers.onnx.export import EXPORTERS, export_onnx
from prover.errors import UnsupportedOperation
from prover.ir import ALL_OPS, ops
from prover.ir.graph import Graph, Node
from prover.semantics import run

F = ops.frozen_array
R = np.random.default_rng(5)


def test_every_ir_op_has_an_exporter():
    assert set(EXPORTERS) == set(ALL_OPS)


def _graph() -> Graph:
    nodes = (
        Node("g", ops.Gemm(F(R.normal(size=(4, 3))), F(R.normal(size=4))), ("x",)),
        Node("c", ops.ConstantOf(F(R.normal(size=(2, 4)))), ()),
        Node("m", ops.Mul(), ("g", "c")),
        Node("s", ops.Slice((0, 1), (1, 3), (None, None), (-1, -2)), ("m",)),
        Node("p", ops.Pad((1, 0, 0, 2), 0.5), ("s",)),
        Node("r", ops.ReduceMean((1,), keepdims=False), ("p",)),
        Node("y", ops.Clip(None, 1.5), ("r",)),
    )
    return Graph((("x", (2, 3)),), nodes, "y", "hand-made")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_export_runs_on_onnxruntime(dtype, kit):
    graph = _graph()
    model = export_onnx(graph, dtype=dtype)
    onnx.checker.check_model(model)
    xs = R.uniform(-2, 2, size=(3, 2, 3))
    ours = run(graph, xs).numpy()
    for x, y in zip(xs, ours, strict=True):
        got = kit.ort_run(model.SerializeToString(), "x", x[None].astype(dtype))
        np.testing.assert_allclose(got[0], y, rtol=1e-5, atol=1e-6)
    # and the export imports back to the same function
    again = import_onnx(model)
    np.testing.assert_allclose(run(again, xs).numpy(), ours, rtol=1e-5, atol=1e-6)


def test_dilated_average_pool_is_refused():
    pool = ops.AveragePool((2, 2), dilations=(2, 2))
    graph = Graph((("x", (1, 5, 5)),), (Node("y", pool, ("x",)),), "y")
    with pytest.raises(UnsupportedOperation, match="AveragePool"):
        export_onnx(graph)
