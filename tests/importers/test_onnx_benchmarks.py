"""Every VNN-COMP benchmark network imports and matches ONNX Runtime on random inputs."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from importers.onnx import import_onnx
from prover.ir import ops
from prover.semantics import run

ROOT = Path("/work/shared/benchmarks/vnncomp")
NETWORKS = sorted(ROOT.glob("*/**/*.onnx"))

pytestmark = pytest.mark.skipif(not NETWORKS, reason="benchmark networks not present")


@pytest.mark.parametrize("path", NETWORKS, ids=lambda p: p.stem)
def test_benchmark_network_matches_onnxruntime(path, kit):
    graph = import_onnx(path)
    origin = graph.origin
    assert origin.path == str(path) and len(origin.sha256) == 64
    assert origin.onnx_bytes == path.read_bytes()
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    xs = rng.uniform(-1.0, 1.0, size=(4, *graph.input_shape))
    ours = run(graph, xs).numpy()
    for x, y in zip(xs, ours, strict=True):
        feed = x.reshape(origin.onnx_input_shape).astype(np.float32)
        expected = kit.ort_run(origin.onnx_bytes, origin.onnx_input_name, feed)
        np.testing.assert_allclose(y.reshape(-1), expected.reshape(-1), rtol=1e-4, atol=1e-5)


def test_test_small_has_no_batch_axis():
    graph = import_onnx(ROOT / "test" / "test_small.onnx")
    assert graph.input_shape == (1,) and graph.output_shape == (1,)
    assert [type(node.op) for node in graph.nodes] == [
        ops.Gemm,
        ops.Relu,
        ops.Gemm,
        ops.Relu,
        ops.Gemm,
    ]


def test_acasxu_is_plain_gemm_relu():
    graph = import_onnx(ROOT / "acasxu" / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx")
    kinds = [type(node.op) for node in graph.nodes]
    assert kinds.count(ops.Gemm) == 7 and kinds.count(ops.Relu) == 6
    assert graph.output_shape == (5,)
