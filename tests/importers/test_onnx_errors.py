"""Bad input to the ONNX importer gets a clear exception from prover.errors."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from importers.onnx import import_onnx, inspect_onnx, supported_onnx_ops
from prover.errors import (
    InvalidWeightsError,
    ModelError,
    ShapeError,
    UnsafeModelError,
    UnsupportedOperation,
)


def n(op_type, inputs, outputs=None, **attrs):
    outputs = outputs or ["y"]
    return helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{outputs[0]}", **attrs)


def relu_model(kit) -> bytes:
    inits = {"W": np.ones((3, 4), np.float32)}
    return kit.make_model([n("MatMul", ["x", "W"], ["m"]), n("Relu", ["m"])], [1, 3], inits=inits)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_file_names_the_file(tmp_path, kit, keep):
    data = relu_model(kit)
    path = tmp_path / "broken.onnx"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="broken.onnx"):
        import_onnx(path)


def test_garbage_bytes_and_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        import_onnx(b"\x08\x07garbage\xff\xff\xff")
    with pytest.raises(ModelError, match="missing.onnx"):
        import_onnx(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="int"):
        import_onnx(42)


def test_nan_initializer_is_named(kit):
    weights = np.ones((3, 4), np.float32)
    weights[1, 2] = np.nan
    model = kit.make_model([n("MatMul", ["x", "Wbad"])], [1, 3], inits={"Wbad": weights})
    with pytest.raises(InvalidWeightsError, match="Wbad"):
        import_onnx(model)


def test_inf_in_constant_node_is_named(kit):
    value = helper.make_tensor("v", TensorProto.FLOAT, [3], [1.0, np.inf, 2.0])
    nodes = [n("Constant", [], ["c"], value=value), n("Add", ["x", "c"])]
    with pytest.raises(InvalidWeightsError, match="Constant_c"):
        import_onnx(kit.make_model(nodes, [1, 3]))


@pytest.mark.parametrize("op_type", ["Einsum", "LSTM"])
def test_unsupported_op_names_op_node_and_supported_list(kit, op_type):
    attrs = {"equation": "bi->bi"} if op_type == "Einsum" else {"hidden_size": 2}
    nodes = [n("Relu", ["x"], ["r"]), n(op_type, ["r"], ["y"], **attrs)]
    with pytest.raises(UnsupportedOperation) as info:
        import_onnx(kit.make_model(nodes, [1, 3]))
    message = str(info.value)
    assert op_type in message and f"{op_type}_y" in message
    assert "Gemm" in message and "Conv" in message
    assert info.value.op == op_type


def test_conv_into_gemm_reads_like_a_compiler_error(kit):
    inits = {"K": np.ones((4, 1, 3, 3), np.float32), "W": np.ones((64, 10), np.float32)}
    nodes = [n("Conv", ["x", "K"], ["c"]), n("Gemm", ["c", "W"], ["y"])]
    nodes[1].name = "fc1"
    with pytest.raises(ShapeError) as info:
        import_onnx(kit.make_model(nodes, [1, 1, 6, 6], inits=inits))
    message = str(info.value)
    assert "fc1" in message and "Gemm" in message
    assert "(1, 4, 4, 4)" in message and "(1, 64)" in message  # actual and expected
    assert info.value.node == "onnx node 'fc1' (Gemm)"


def test_flattened_features_mismatch(kit):
    inits = {"W": np.ones((10, 64), np.float32), "B": np.zeros(10, np.float32)}
    nodes = [n("Flatten", ["x"], ["f"]), n("Gemm", ["f", "W", "B"], transB=1)]
    with pytest.raises(ShapeError, match=r"64"):
        import_onnx(kit.make_model(nodes, [1, 4, 4, 3], inits=inits))


def test_op_across_batch_axis_is_refused(kit):
    with pytest.raises(UnsupportedOperation, match="batch axis"):
        import_onnx(kit.make_model([n("Softmax", ["x"], axis=0)], [1, 3], opset=13))
    with pytest.raises(UnsupportedOperation, match="batch axis"):
        import_onnx(kit.make_model([n("Transpose", ["x"], perm=[1, 0])], [1, 3]))


def test_several_inputs_and_symbolic_dims(kit):
    graph = helper.make_graph(
        [n("Add", ["a", "b"])],
        "two",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, 3]) for k in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ModelError, match="exactly one graph input"):
        import_onnx(model)
    with pytest.raises(ModelError, match="symbolic"):
        import_onnx(kit.make_model([n("Relu", ["x"])], [1, "width"]))


def test_initializers_listed_as_inputs_are_constants(kit):
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    graph = helper.make_graph(
        [n("MatMul", ["x", "W"])],
        "acas-style",
        [
            helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 4]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    model.ir_version = 4
    imported = kit.check(model.SerializeToString())
    assert imported.input_name == "x"


# ------------------------------------------------------------------ external data


def external_model(folder, location: str) -> onnx.ModelProto:
    """A model whose weight W is stored externally at ``location``."""
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    tensor = numpy_helper.from_array(weights, "W")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "48")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [n("MatMul", ["x", "W"])],
        "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [tensor],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_external_data_inside_folder_loads(tmp_path, kit):
    (tmp_path / "weights.bin").write_bytes(np.arange(12, dtype=np.float32).tobytes())
    path = tmp_path / "net.onnx"
    path.write_bytes(external_model(tmp_path, "weights.bin").SerializeToString())
    graph = import_onnx(path)
    x = np.array([1.0, 2.0, 3.0])
    expected = x @ np.arange(12).reshape(3, 4)
    out = kit.ort_run(graph.origin.onnx_bytes, "x", x.reshape(1, 3).astype(np.float32))
    np.testing.assert_allclose(out.reshape(-1), expected)
    np.testing.assert_allclose(graph.nodes[0].op.weight, np.arange(12).reshape(3, 4).T)


def test_external_data_escaping_folder_is_refused(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    (tmp_path / "secret").write_bytes(b"\0" * 48)
    path = inner / "net.onnx"
    path.write_bytes(external_model(inner, "../secret").SerializeToString())
    with pytest.raises(UnsafeModelError, match=r"\.\./secret"):
        import_onnx(path)


def test_external_data_absolute_path_is_refused(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 48)
    path = tmp_path / "net.onnx"
    path.write_bytes(external_model(tmp_path, str(tmp_path / "w.bin")).SerializeToString())
    with pytest.raises(UnsafeModelError, match="relative"):
        import_onnx(path)


def test_external_data_symlink_escaping_is_refused(tmp_path):
    inner = tmp_path / "model"
    inner.mkdir()
    (tmp_path / "secret").write_bytes(b"\0" * 48)
    os.symlink(tmp_path / "secret", inner / "link.bin")
    path = inner / "net.onnx"
    path.write_bytes(external_model(inner, "link.bin").SerializeToString())
    with pytest.raises(UnsafeModelError, match="outside"):
        import_onnx(path)


def test_external_data_from_bytes_is_refused(tmp_path):
    model = external_model(tmp_path, "weights.bin")
    with pytest.raises(ModelError, match="external data"):
        import_onnx(model.SerializeToString())
    with pytest.raises(ModelError, match="external data"):
        import_onnx(model)


# ------------------------------------------------------------------------ inspect


def test_inspect_reports_every_node_even_when_import_fails(kit):
    nodes = [
        n("Flatten", ["x"], ["f"]),
        n("Einsum", ["f"], ["e"], equation="bi->bi"),
        n("Relu", ["e"], ["y"]),
    ]
    rows = inspect_onnx(kit.make_model(nodes, [1, 2, 3]))
    assert [row["op_type"] for row in rows] == ["Flatten", "Einsum", "Relu"]
    assert [row["supported"] for row in rows] == [True, False, True]
    assert rows[0]["shape"] == (6,)
    assert rows[1]["error"] and "Einsum" in rows[1]["error"]
    assert rows[2]["shape"] is None


def test_supported_ops_cover_the_required_list():
    required = """Gemm MatMul Add Sub Mul Div Neg Relu LeakyRelu Sigmoid Tanh Softmax Exp Log
    Sqrt Abs Conv MaxPool AveragePool GlobalAveragePool BatchNormalization Flatten Reshape
    Transpose Squeeze Unsqueeze Concat Slice Gather Split Pad Clip ReduceSum ReduceMean
    Identity Dropout Constant Cast Shape""".split()
    assert set(required) <= set(supported_onnx_ops())
    assert list(supported_onnx_ops()) == sorted(supported_onnx_ops())


def test_inspect_survives_models_the_importer_rejects():
    graph = helper.make_graph(
        [n("Add", ["a", "b"], ["s"]), n("Relu", ["s"])],
        "two",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, [1, 3]) for k in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    rows = inspect_onnx(model)
    assert [(row["op_type"], row["supported"], row["shape"]) for row in rows] == [
        ("Add", True, None),
        ("Relu", True, None),
    ]
