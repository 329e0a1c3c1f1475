"""The checker's arithmetic and rules: soundness by sampling, exactness, VNN-LIB reading."""

from __future__ import annotations

import base64
import math
from fractions import Fraction

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from proofs.checker import arith, rules
from proofs.checker.encoding import Malformed, hex_list, parse_array, parse_float
from proofs.checker.model import read_model
from proofs.checker.vnnlib import parse_vnnlib
from proofs.writer import encode_array, evaluate_network


def mlp_bytes(weights: list[tuple[np.ndarray, np.ndarray]], style: str = "gemm") -> bytes:
    """A ReLU MLP as ONNX: Gemm(transB=1) or MatMul + Add layers, input (1, n)."""
    nodes, inits, value = [], [], "x"
    for i, (W, b) in enumerate(weights):
        inits += [
            numpy_helper.from_array(W.astype(np.float32), f"W{i}"),
            numpy_helper.from_array(b.astype(np.float32), f"b{i}"),
        ]
        if style == "gemm":
            nodes.append(helper.make_node("Gemm", [value, f"W{i}", f"b{i}"], [f"g{i}"], transB=1))
        else:
            inits[-2] = numpy_helper.from_array(W.T.astype(np.float32), f"W{i}")
            nodes.append(helper.make_node("MatMul", [value, f"W{i}"], [f"m{i}"]))
            nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"g{i}"]))
        value = f"g{i}"
        if i + 1 < len(weights):
            nodes.append(helper.make_node("Relu", [value], [f"r{i}"]))
            value = f"r{i}"
    n_in, n_out = weights[0][0].shape[1], weights[-1][0].shape[0]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info(value, TensorProto.FLOAT, [1, n_out])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


def random_weights(rng, sizes):
    return [
        (rng.normal(size=(m, n)) / math.sqrt(n), rng.normal(size=m) * 0.5)
        for n, m in zip(sizes[:-1], sizes[1:], strict=True)
    ]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), style=st.sampled_from(["gemm", "matmul"]))
def test_bounds_contain_onnxruntime_outputs(seed, style):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(1, 5))] + [int(rng.integers(2, 7)) for _ in range(3)]
    data = mlp_bytes(random_weights(rng, sizes), style)
    net = read_model(data)
    center = rng.normal(size=sizes[0])
    radius = rng.uniform(0.01, 1.0, size=sizes[0])
    lower = (center - radius).astype(np.float32).astype(np.float64)
    upper = (center + radius).astype(np.float32).astype(np.float64)
    phases = {}
    if rng.random() < 0.5:  # a ReLU split: sample only inputs satisfying it
        phases[(0, int(rng.integers(0, sizes[1])))] = int(rng.choice([-1, 1]))
    xs = lower + rng.random((400, sizes[0])) * (upper - lower)
    xs = np.clip(xs.astype(np.float32).astype(np.float64), lower, upper)
    xs = np.vstack([xs, lower, upper])
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    ys = np.vstack([session.run(None, {"x": x[None].astype(np.float32)})[0] for x in xs])
    first = xs @ net.layers[0].W.T + net.layers[0].b
    keep = np.ones(len(xs), bool)
    for (_, j), phase in phases.items():
        keep &= first[:, j] * phase >= 0
    C = rng.normal(size=(3, sizes[-1]))
    for linear in (False, True):
        bounds, relax, empty = rules.region_bounds(net, lower, upper, phases, None, linear)
        if empty.any():
            assert not keep.any()
            continue
        lo, hi = bounds[-1]
        tol = 1e-4 * (1 + np.abs(ys).max())  # ORT computes in float32
        assert np.all(ys[keep] >= lo - tol) and np.all(ys[keep] <= hi + tol)
        low = rules.backsubstitute(net, C, len(net.layers), bounds, relax)
        exact = np.array([evaluate_network(net, x) for x in xs[keep]])
        if keep.any():
            assert np.all(exact @ C.T >= low - 1e-9)


def test_linear_bound_with_given_slopes_is_sound_by_sampling():
    rng = np.random.default_rng(7)
    net = read_model(mlp_bytes(random_weights(rng, [3, 8, 8, 2])))
    lower, upper = -np.ones(3), np.ones(3)
    xs = lower + rng.random((3000, 3)) * (upper - lower)
    ys = np.array([evaluate_network(net, x) for x in xs])
    for _ in range(10):
        slopes = {k: rng.random(8) for k in range(2)}
        bounds, relax, _ = rules.region_bounds(net, lower, upper, {}, slopes, True)
        C = rng.normal(size=(4, 2))
        low = rules.backsubstitute(net, C, len(net.layers), bounds, relax)
        assert np.all(ys @ C.T >= low[None, :] - 1e-12)


def test_error_bound_covers_adversarial_sums():
    # fl(1e16 + 1 - 1e16) = 0 in any order with no FMA; the true value is 1.
    A = np.array([[1e16, 1.0, -1e16]])
    x = np.ones(3)
    assert arith.matvec_lower(A, x)[0] <= 1.0 <= arith.matvec_upper(A, x)[0]
    rng = np.random.default_rng(0)
    for _ in range(50):
        A = rng.normal(size=(5, 40)) * 10.0 ** rng.integers(-8, 9, size=(5, 40))
        x = rng.normal(size=40)
        exact = [sum(Fraction(a) * Fraction(b) for a, b in zip(row, x, strict=True)) for row in A]
        lo, hi = arith.matvec_lower(A, x), arith.matvec_upper(A, x)
        assert all(Fraction(lo[i]) <= exact[i] <= Fraction(hi[i]) for i in range(5))


def test_exact_forward_is_exact():
    rng = np.random.default_rng(3)
    net = read_model(mlp_bytes(random_weights(rng, [4, 6, 3])))
    x = rng.normal(size=4)
    got = rules.exact_output(net, x)
    v = [Fraction(float(t)) for t in x]
    for layer in net.layers:
        if layer.kind == "relu":
            v = [max(t, Fraction(0)) for t in v]
        else:
            v = [
                sum((Fraction(float(w)) * t for w, t in zip(row, v, strict=True)), Fraction(0))
                + Fraction(float(b))
                for row, b in zip(layer.W, layer.b, strict=True)
            ]
    assert got == v


def test_number_encodings_are_strict():
    assert parse_float("0x1.8000000000000p+1", "x") == 3.0
    for bad in ["1.5", "inf", "nan", "0x1.8p+1", 3.0, "0X1.8000000000000P+1", "-inf"]:
        with pytest.raises(Malformed):
            parse_float(bad, "x")
    with pytest.raises(Malformed):
        parse_array({"f64le": "AAAAAAAA8H8="}, "a")  # +inf
    assert parse_array({"f64le": "AAAAAAAA8D8="}, "a").tolist() == [1.0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)), min_size=0, max_size=40)
)
def test_slope_vectors_round_trip_through_every_compact_encoding(values):
    """Mostly 0/1 vectors (stable ReLUs' slopes) are bits with the other entries apart;
    the checker decodes every encoding to the very same float64 values."""
    array = np.array(values, dtype=np.float64)
    encoded = encode_array(array)
    if 2 * int(((array != 0.0) & (array != 1.0)).sum()) <= array.size:
        assert "bits" in encoded
    assert np.array_equal(parse_array(encoded, "a"), array)  # -0.0 may come back as 0.0
    assert np.array_equal(parse_array(hex_list(array), "a"), array)


def test_positions_of_the_entries_apart_from_the_bits_are_checked():
    good = encode_array(np.array([0.0, 0.25, 1.0, 1.0, 0.5]))
    assert set(good) == {"bits", "n", "at", "f64le"}
    as_u4 = {
        name: base64.b64encode(np.array(v, "<u4").tobytes()).decode()
        for name, v in [
            ("beyond", [1, 5]),
            ("unordered", [4, 1]),
            ("repeated", [1, 1]),
            ("one", [1]),
        ]
    }
    for name, at in as_u4.items():
        with pytest.raises(Malformed, match="'at'"):
            parse_array({**good, "at": at}, name)
    with pytest.raises(Malformed):
        parse_array({**good, "at": good["at"][:-4] + "AA=="}, "truncated")
    with pytest.raises(Malformed):
        parse_array(
            {**good, "f64le": base64.b64encode(np.array([0.5, np.nan]).tobytes()).decode()}, "nan"
        )
    with pytest.raises(Malformed):
        parse_array({"bits": good["bits"], "n": good["n"], "at": good["at"]}, "no values")


def test_vnnlib_reader_agrees_with_the_importer_on_the_benchmarks():
    from pathlib import Path

    from importers.vnnlib import VNNLib

    root = Path("/work/shared/benchmarks/vnncomp")
    files = sorted(root.glob("acasxu/vnnlib/*.vnnlib")) + sorted(root.glob("test/*.vnnlib"))
    files += sorted(root.glob("mnist_fc/vnnlib/*.vnnlib"))[:1]
    if not files:
        pytest.skip("benchmarks not available")
    for path in files:
        theirs = VNNLib(str(path))
        ours = parse_vnnlib(path.read_text(), theirs.n_inputs, theirs.n_outputs, as_float=True)
        ours = [
            d for d in ours if d[0] is not None and all(a <= b for a, b in zip(*d[:2], strict=True))
        ]
        assert len(ours) == len(theirs.disjuncts), path.name
        boxes = {tuple(map(float, d[0] + d[1])) for d in ours}
        for box in theirs.boxes:
            assert tuple(box.lower.reshape(-1)) + tuple(box.upper.reshape(-1)) in boxes


def test_vnnlib_reader_rejects_what_it_does_not_support():
    for text in [
        "(declare-const X_0 Real)(assert (<= (* X_0 X_0) 1))",
        "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0 Y_0))",
        "(declare-const X_0 Real)(assert (<= X_0 1))",  # unbounded below
        "(declare-const X_0 Real)(assert (<= X_0 1)",  # unbalanced
        "(declare-const X_0 Real)(assert (<= X_0 1e))",
        "(declare-const X_0 Real)(eval (<= X_0 1))",
        # Y_01 would alias Y_1 (as the prover's importer does, leading zeros are refused)
        "(declare-const X_0 Real)(declare-const Y_01 Real)(assert (<= -1 X_0 1))",
    ]:
        with pytest.raises(Malformed):
            parse_vnnlib(text, 1, 1)
    text = (
        "(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= -1 X_0 0.1))(assert (> Y_0 3))"
    )
    ((lower, upper, rows),) = parse_vnnlib(text, 1, 1)
    assert lower == [Fraction(-1)] and upper == [Fraction(1, 10)]
    assert rows == [([Fraction(-1)], Fraction(-3), True)]


def test_model_reader_conv_and_shapes_match_onnxruntime():
    rng = np.random.default_rng(1)
    k = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "k", "kb"], ["c"], pads=[1, 0, 1, 2], strides=[2, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Sub", ["f", "s"], ["y"]),
    ]
    out_size = 3 * 3 * 5
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_size])],
        [
            numpy_helper.from_array(k, "k"),
            numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "kb"),
            numpy_helper.from_array(rng.normal(size=out_size).astype(np.float32), "s"),
        ],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    onnx.checker.check_model(onnx.load_model_from_string(data))
    net = read_model(data)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for _ in range(5):
        x = rng.normal(size=(1, 2, 5, 5)).astype(np.float32)
        want = session.run(None, {"x": x})[0].reshape(-1)
        assert np.allclose(evaluate_network(net, x.reshape(-1)), want, atol=1e-5)


def test_batchnorm_is_folded_and_matches_onnxruntime():
    rng = np.random.default_rng(5)
    c = 3
    params = [
        rng.uniform(0.5, 2, c),
        rng.normal(size=c),
        rng.normal(size=c),
        rng.uniform(0.1, 2, c),
    ]
    names = ["g", "b", "m", "v"]
    graph = helper.make_graph(
        [
            helper.make_node("BatchNormalization", ["x", *names], ["n"], epsilon=1e-3),
            helper.make_node("Relu", ["n"], ["y"]),
        ],
        "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 2, 2])],
        [
            numpy_helper.from_array(p.astype(np.float32), n)
            for p, n in zip(params, names, strict=True)
        ],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    net = read_model(data)
    assert net.notes and "folded" in net.notes[0]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = rng.normal(size=(1, c, 2, 2)).astype(np.float32)
    want = session.run(None, {"x": x})[0].reshape(-1)
    assert np.allclose(evaluate_network(net, x.reshape(-1)), want, atol=1e-5)


def test_model_reader_refuses_to_squeeze_an_axis_that_is_not_one():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    for axes, ok in (([0], True), ([1], False)):
        node = helper.make_node("Squeeze", ["x", "axes"], ["y"])
        init = [numpy_helper.from_array(np.array(axes, dtype=np.int64), "axes")]
        graph = helper.make_graph([node], "g", [x], [y], init)
        data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        if ok:
            assert read_model(data.SerializeToString()).input_size == 3
        else:
            with pytest.raises(Malformed, match="not 1"):
                read_model(data.SerializeToString())
