"""Conformance: every supported ONNX op, imported and run by our semantics, matches ONNX
Runtime on random inputs (several opsets where the op's semantics changed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from importers.onnx import import_onnx, supported_onnx_ops
from prover.errors import ShapeError
from prover.ir import ops

R = np.random.default_rng(7)


def w(*shape: int) -> np.ndarray:
    """Random float32 weights."""
    return R.standard_normal(shape).astype(np.float32)


def n(op_type, inputs, outputs=None, **attrs):
    outputs = outputs or ["y"]
    return helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{outputs[0]}", **attrs)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# Each case: id -> (nodes, input shape, opset, initializers)
CASES = {
    # ------------------------------------------------------------------ linear
    "gemm_transB_alpha_beta_op7": (
        [n("Gemm", ["x", "W", "C"], alpha=0.5, beta=2.0, transB=1)],
        [1, 4],
        7,
        {"W": w(3, 4), "C": w(3)},
    ),
    "gemm_plain_op11": ([n("Gemm", ["x", "W", "C"])], [1, 4], 11, {"W": w(4, 3), "C": w(1, 3)}),
    "gemm_no_c_op13": ([n("Gemm", ["x", "W"], transB=1)], ["N", 4], 13, {"W": w(2, 4)}),
    "gemm_transA_unbatched": (
        [n("Gemm", ["x", "W", "C"], transA=1)],
        [3, 4],
        13,
        {"W": w(3, 2), "C": w(4, 2)},
    ),
    "gemm_const_A": (
        [n("Gemm", ["A", "x", "C"], transB=1, alpha=2.0)],
        [5, 3],
        13,
        {"A": w(2, 3), "C": w(2, 1)},
    ),
    "matmul_right": ([n("MatMul", ["x", "W"])], [1, 4], 13, {"W": w(4, 3)}),
    "matmul_left_vector_input": ([n("MatMul", ["W", "x"])], [4], 14, {"W": w(2, 4)}),
    "matmul_left_3d": ([n("MatMul", ["W", "x"])], [1, 3, 4], 13, {"W": w(2, 3)}),
    "matmul_left_batch_contracted": ([n("MatMul", ["W", "x"])], [1, 4], 13, {"W": w(3, 1)}),
    "matmul_right_vector": ([n("MatMul", ["x", "v"])], [1, 2, 4], 13, {"v": w(4)}),
    "matmul_left_vector": ([n("MatMul", ["v", "x"])], [1, 4, 3], 13, {"v": w(4)}),
    "matmul_add": (
        [n("MatMul", ["x", "W"], ["m"]), n("Add", ["m", "b"])],
        [1, 4],
        13,
        {"W": w(4, 3), "b": w(3)},
    ),
    # -------------------------------------------------------------- arithmetic
    "add_const": ([n("Add", ["x", "c"])], [1, 2, 3], 13, {"c": w(2, 1)}),
    "add_const_left_batchdim": ([n("Add", ["c", "x"])], [1, 3], 7, {"c": w(1, 3)}),
    "add_const_enlarges": ([n("Add", ["x", "c"])], [1, 3], 13, {"c": w(2, 1, 3)}),
    "sub_const_right": ([n("Sub", ["x", "c"])], [1, 3], 13, {"c": w(3)}),
    "sub_const_left": ([n("Sub", ["c", "x"])], [1, 3], 13, {"c": w(3)}),
    "mul_const": ([n("Mul", ["x", "c"])], [1, 3], 13, {"c": w(3)}),
    "div_const": (
        [n("Div", ["x", "c"])],
        [1, 3],
        13,
        {"c": np.array([2.0, -4.0, 0.5], np.float32)},
    ),
    "div_const_left": (
        [n("Exp", ["x"], ["e"]), n("Div", ["c", "e"])],
        [1, 3],
        13,
        {"c": w(3)},
    ),
    "add_two_dynamic": ([n("Relu", ["x"], ["r"]), n("Add", ["x", "r"])], [1, 3], 13, {}),
    "sub_two_dynamic_broadcast": (
        [n("ReduceSum", ["x"], ["s"], axes=[2], keepdims=1), n("Sub", ["x", "s"])],
        [1, 2, 3],
        11,
        {},
    ),
    "mul_two_dynamic": ([n("Tanh", ["x"], ["t"]), n("Mul", ["x", "t"])], [1, 3], 13, {}),
    "div_two_dynamic": ([n("Exp", ["x"], ["e"]), n("Div", ["x", "e"])], [1, 3], 13, {}),
    "neg": ([n("Neg", ["x"])], [1, 3], 13, {}),
    # -------------------------------------------------------------- activations
    "relu": ([n("Relu", ["x"])], [1, 3], 13, {}),
    "leaky_relu": ([n("LeakyRelu", ["x"], alpha=0.2)], [1, 3], 13, {}),
    "leaky_relu_default": ([n("LeakyRelu", ["x"])], [1, 3], 7, {}),
    "sigmoid": ([n("Sigmoid", ["x"])], [1, 3], 13, {}),
    "tanh": ([n("Tanh", ["x"])], [1, 3], 13, {}),
    "exp": ([n("Exp", ["x"])], [1, 3], 13, {}),
    "log": ([n("Exp", ["x"], ["e"]), n("Log", ["e"])], [1, 3], 13, {}),
    "sqrt": ([n("Abs", ["x"], ["a"]), n("Sqrt", ["a"])], [1, 3], 13, {}),
    "abs": ([n("Abs", ["x"])], [1, 3], 13, {}),
    "softmax_op11_axis1_coerced": ([n("Softmax", ["x"], axis=1)], [1, 3, 4], 11, {}),
    "softmax_op11_axis2": ([n("Softmax", ["x"], axis=2)], [1, 3, 4], 11, {}),
    "softmax_op11_default": ([n("Softmax", ["x"])], [1, 3, 4], 11, {}),
    "softmax_op11_axis0": ([n("Softmax", ["x"], axis=0)], [1, 3, 4], 11, {}),
    "softmax_op13_axis1": ([n("Softmax", ["x"], axis=1)], [1, 3, 4], 13, {}),
    "softmax_op13_default": ([n("Softmax", ["x"])], [1, 3, 4], 13, {}),
    "clip_op9_attrs": ([n("Clip", ["x"], min=-0.5, max=0.7)], [1, 4], 9, {}),
    "clip_op13_inputs": (
        [n("Clip", ["x", "lo", "hi"])],
        [1, 4],
        13,
        {"lo": np.array(-0.3, np.float32), "hi": np.array(0.4, np.float32)},
    ),
    "clip_op13_min_only": ([n("Clip", ["x", "lo"])], [1, 4], 13, {"lo": np.array(0.1, np.float32)}),
    # ---------------------------------------------------------------- conv / pool
    "conv_stride_pads": (
        [n("Conv", ["x", "W", "B"], strides=[2, 1], pads=[1, 0, 2, 1])],
        [1, 2, 7, 6],
        11,
        {"W": w(3, 2, 3, 3), "B": w(3)},
    ),
    "conv_dilation_group": (
        [n("Conv", ["x", "W"], dilations=[2, 2], group=2)],
        [1, 4, 8, 8],
        13,
        {"W": w(4, 2, 3, 3)},
    ),
    "conv_same_upper": (
        [n("Conv", ["x", "W"], auto_pad="SAME_UPPER", strides=[2, 2])],
        [1, 2, 7, 6],
        11,
        {"W": w(3, 2, 4, 4)},
    ),
    "conv_same_lower": (
        [n("Conv", ["x", "W"], auto_pad="SAME_LOWER", strides=[2, 2])],
        [1, 2, 7, 6],
        11,
        {"W": w(3, 2, 4, 4)},
    ),
    "conv_valid": (
        [n("Conv", ["x", "W"], auto_pad="VALID")],
        [1, 2, 6, 6],
        7,
        {"W": w(2, 2, 3, 3)},
    ),
    "maxpool_pads_ceil": (
        [n("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
        [1, 2, 8, 8],
        11,
        {},
    ),
    "maxpool_same": (
        [n("MaxPool", ["x"], kernel_shape=[2, 3], auto_pad="SAME_LOWER", strides=[2, 2])],
        [1, 2, 7, 7],
        12,
        {},
    ),
    "maxpool_dilated": (
        [n("MaxPool", ["x"], kernel_shape=[2, 2], pads=[1, 0, 0, 1], dilations=[2, 2])],
        [1, 2, 7, 7],
        12,
        {},
    ),
    "maxpool_op8": (
        [n("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])],
        [1, 2, 6, 6],
        8,
        {},
    ),
    "avgpool_exclude_pad": (
        [n("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])],
        [1, 2, 7, 7],
        11,
        {},
    ),
    "avgpool_include_pad": (
        [n("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)],
        [1, 2, 6, 6],
        11,
        {},
    ),
    "avgpool_ceil": (
        [n("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)],
        [1, 2, 7, 7],
        11,
        {},
    ),
    "avgpool_ceil_include_pad": (
        [
            n(
                "AveragePool",
                ["x"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                ceil_mode=1,
                count_include_pad=1,
            )
        ],
        [1, 1, 6, 6],
        19,
        {},
    ),
    "global_avgpool": ([n("GlobalAveragePool", ["x"])], [1, 3, 4, 5], 13, {}),
    "global_maxpool": ([n("GlobalMaxPool", ["x"])], [1, 3, 4, 5], 13, {}),
    "batchnorm_op9_after_conv": (
        [
            n("Conv", ["x", "W"], ["c"]),
            n("BatchNormalization", ["c", "s", "b", "m", "v"], epsilon=1e-3),
        ],
        [1, 2, 5, 5],
        9,
        {
            "W": w(3, 2, 3, 3),
            "s": w(3),
            "b": w(3),
            "m": w(3),
            "v": R.uniform(0.5, 2, 3).astype(np.float32),
        },
    ),
    "batchnorm_op15_alone": (
        [n("BatchNormalization", ["x", "s", "b", "m", "v"])],
        [1, 3, 2, 2],
        15,
        {"s": w(3), "b": w(3), "m": w(3), "v": R.uniform(0.5, 2, 3).astype(np.float32)},
    ),
    "batchnorm_after_gemm": (
        [n("Gemm", ["x", "W"], ["g"]), n("BatchNormalization", ["g", "s", "b", "m", "v"])],
        [1, 4],
        14,
        {
            "W": w(4, 3),
            "s": w(3),
            "b": w(3),
            "m": w(3),
            "v": R.uniform(0.5, 2, 3).astype(np.float32),
        },
    ),
    # -------------------------------------------------------------- shape ops
    "flatten_axis1": ([n("Flatten", ["x"])], [1, 2, 3], 11, {}),
    "flatten_axis2": ([n("Flatten", ["x"], axis=2)], [1, 2, 3], 11, {}),
    "flatten_axis0": ([n("Flatten", ["x"], axis=0)], [1, 2, 3], 11, {}),
    "reshape_zero_minus_one": ([n("Reshape", ["x", "s"])], [1, 2, 6], 13, {"s": i64(0, -1, 3)}),
    "reshape_merges_batch": ([n("Reshape", ["x", "s"])], [1, 2, 6], 13, {"s": i64(4, 3)}),
    "reshape_allowzero": (
        [n("Reshape", ["x", "s"], allowzero=1)],
        [1, 2, 6],
        14,
        {"s": i64(1, 12)},
    ),
    "transpose": ([n("Transpose", ["x"], perm=[0, 2, 3, 1])], [1, 2, 3, 4], 13, {}),
    "transpose_default_unbatched": ([n("Transpose", ["x"])], [2, 3], 13, {}),
    "squeeze_op11_attr": ([n("Squeeze", ["x"], axes=[2])], [1, 3, 1], 11, {}),
    "squeeze_op13_input": ([n("Squeeze", ["x", "a"])], [1, 3, 1], 13, {"a": i64(-1)}),
    "squeeze_all": ([n("Squeeze", ["x"])], [1, 3, 1], 13, {}),
    "unsqueeze_op11_attr": ([n("Unsqueeze", ["x"], axes=[1, -1])], [1, 3], 11, {}),
    "unsqueeze_op13_input": ([n("Unsqueeze", ["x", "a"])], [1, 3], 13, {"a": i64(0)}),
    "concat_dynamic_and_const": (
        [n("Relu", ["x"], ["r"]), n("Concat", ["x", "r", "c"], axis=-1)],
        [1, 2, 3],
        13,
        {"c": w(1, 2, 2)},
    ),
    "slice_op9_attrs": (
        [n("Slice", ["x"], starts=[1, -3], ends=[100, -1], axes=[1, 2])],
        [1, 4, 5],
        9,
        {},
    ),
    "slice_op13_steps": (
        [n("Slice", ["x", "s", "e", "a", "t"])],
        [1, 4, 6],
        13,
        {"s": i64(-1, 0), "e": i64(-100, 100), "a": i64(1, 2), "t": i64(-2, 2)},
    ),
    "slice_op10_defaults": (
        [n("Slice", ["x", "s", "e"])],
        [1, 4, 6],
        10,
        {"s": i64(0, 1), "e": i64(1, 3)},
    ),
    "gather_negative": ([n("Gather", ["x", "i"], axis=1)], [1, 5, 2], 13, {"i": i64(-1, 0, 3)}),
    "gather_scalar": (
        [n("Gather", ["x", "i"], axis=-1)],
        [1, 5, 2],
        13,
        {"i": np.array(1, np.int64)},
    ),
    "split_op11_attr": (
        [n("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]), n("Sub", ["b", "a"])],
        [1, 4, 2],
        11,
        {},
    ),
    "split_op13_input": (
        [n("Split", ["x", "s"], ["a", "b"], axis=2), n("Concat", ["b", "a"], axis=2)],
        [1, 2, 5],
        13,
        {"s": i64(2, 3)},
    ),
    "split_op18_num_outputs": (
        [
            n("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3),
            n("Concat", ["c", "a", "b"], ["y"], axis=1),
        ],
        [1, 7],
        18,
        {},
    ),
    "split_equal": (
        [n("Split", ["x"], ["a", "b"], axis=-1), n("Mul", ["a", "b"])],
        [1, 3, 4],
        13,
        {},
    ),
    "pad_op9_attr": ([n("Pad", ["x"], pads=[0, 1, 0, 0, 2, 1], value=0.5)], [1, 2, 3], 9, {}),
    "pad_op13_inputs": (
        [n("Pad", ["x", "p", "v"])],
        [1, 2, 3, 3],
        13,
        {"p": i64(0, 0, 1, 2, 0, 0, 2, 0), "v": np.array(-1.0, np.float32)},
    ),
    "pad_negative": ([n("Pad", ["x", "p"])], [1, 4, 4], 13, {"p": i64(0, -1, 1, 0, 2, -2)}),
    "pad_op18_axes": (
        [n("Pad", ["x", "p", "", "a"])],
        [1, 3, 3],
        18,
        {"p": i64(1, 2), "a": i64(-1)},
    ),
    "reducesum_op11_attr": ([n("ReduceSum", ["x"], axes=[1], keepdims=0)], [1, 3, 4], 11, {}),
    "reducesum_op13_input": ([n("ReduceSum", ["x", "a"])], [1, 3, 4], 13, {"a": i64(-1)}),
    "reducesum_all_axes": ([n("ReduceSum", ["x"], keepdims=0)], [1, 3, 4], 13, {}),
    "reducemean_op13_attr": ([n("ReduceMean", ["x"], axes=[2, 1])], [1, 3, 4], 13, {}),
    "reducemean_op18_input": (
        [n("ReduceMean", ["x", "a"], keepdims=0)],
        [1, 3, 4],
        18,
        {"a": i64(0, 2)},
    ),
    "identity_dropout_cast": (
        [
            n("Identity", ["x"], ["i"]),
            n("Dropout", ["i"], ["d"]),
            n("Cast", ["d"], ["y"], to=TensorProto.FLOAT),
        ],
        [1, 3],
        13,
        {},
    ),
    "dropout_op7": ([n("Dropout", ["x"], ratio=0.3)], [1, 3], 7, {}),
    "constant_node": (
        [
            n(
                "Constant",
                [],
                ["c"],
                value=helper.make_tensor("v", TensorProto.FLOAT, [3], [1, 2, 3]),
            ),
            n("Mul", ["x", "c"]),
        ],
        [1, 3],
        13,
        {},
    ),
    "expand": ([n("Expand", ["x", "s"])], [1, 1, 3], 13, {"s": i64(1, 2, 3)}),
    "pytorch_shape_chain": (
        [
            n("Shape", ["x"], ["shape"]),
            n("Gather", ["shape", "zero"], ["batch"], axis=0),
            n("Unsqueeze", ["batch", "zero1"], ["batch1"]),
            n("Concat", ["batch1", "minus1"], ["target"], axis=0),
            n("Reshape", ["x", "target"], ["flat"]),
            n("Gemm", ["flat", "W", "B"], transB=1),
        ],
        ["batch", 2, 3],
        13,
        {
            "zero": np.array(0, np.int64),
            "zero1": i64(0),
            "minus1": i64(-1),
            "W": w(4, 6),
            "B": w(4),
        },
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime(case, kit):
    nodes, shape, opset, inits = CASES[case]
    model = kit.make_model(nodes, shape, opset=opset, inits=inits)
    kit.check(model)


def test_every_converter_is_exercised():
    used = {node.op_type for nodes, *_ in CASES.values() for node in nodes}
    missing = set(supported_onnx_ops()) - used - {"Size", "ConstantOfShape", "Range"}
    assert not missing


def test_gemm_and_matmul_add_become_one_gemm(kit):
    nodes, shape, opset, inits = CASES["matmul_add"]
    graph = kit.check(kit.make_model(nodes, shape, opset=opset, inits=inits))
    assert [type(node.op) for node in graph.nodes] == [ops.Gemm]


def test_batchnorm_folds_into_conv(kit):
    nodes, shape, opset, inits = CASES["batchnorm_op9_after_conv"]
    graph = kit.check(kit.make_model(nodes, shape, opset=opset, inits=inits))
    assert [type(node.op) for node in graph.nodes] == [ops.Conv]


def test_batch_axis_is_removed_and_origin_recorded(kit):
    model = kit.make_model([n("Relu", ["x"])], ["N", 3, 2])
    graph = kit.check(model)
    assert graph.input_shape == (3, 2)
    assert graph.origin.onnx_input_shape == (1, 3, 2)
    assert graph.origin.onnx_bytes == model
    assert graph.origin.kind == "onnx"
    assert graph.nodes[0].source == "onnx node 'Relu_y' (Relu)"


def test_rank_one_input_has_no_batch_axis(kit):
    graph = kit.check(kit.make_model([n("Relu", ["x"])], [1]))
    assert graph.input_shape == (1,)
    assert graph.origin.onnx_input_shape == (1,)


def test_float64_model(kit):
    graph_proto = helper.make_graph(
        [n("Sigmoid", ["x"])],
        "f64",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 3])],
    )
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    graph = kit.check(model.SerializeToString())
    assert graph.origin.onnx_input_dtype == "float64"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(-8, 8) | st.sampled_from([-(2**62), 2**62]),
    end=st.integers(-8, 8) | st.sampled_from([-(2**62), 2**62]),
    step=st.integers(-3, 3).filter(bool),
)
def test_slice_clamping_matches_onnxruntime(kit, start, end, step):
    model = kit.make_model(
        [n("Slice", ["x", "s", "e", "a", "t"])],
        [1, 2, 5],
        opset=13,
        inits={"s": i64(start), "e": i64(end), "a": i64(2), "t": i64(step)},
    )
    expected = kit.ort_run(model, "x", np.zeros((1, 2, 5), np.float32))
    if expected.size == 0:
        with pytest.raises(ShapeError):
            import_onnx(model)
    else:
        kit.check(model, samples=1)
