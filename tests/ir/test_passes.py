"""Each canonicalising pass rewrites what it should and keeps the function (evaluation of
the graph before and after on random inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.ir.passes import (
    canonicalize,
    dead_code,
    drop_identities,
    fold_affine,
    fold_constants,
    fuse_gemm_add,
    merge_neg,
    merge_reshapes,
)
from prover.semantics import run

R = np.random.default_rng(3)
F = ops.frozen_array


def rand(*shape: int) -> np.ndarray:
    return F(R.standard_normal(shape))


def chain(shape, *layers, extra=()) -> Graph:
    """A graph applying ``layers`` (op or (op, extra input names)) one after the other."""
    nodes, prev = list(extra), "x"
    for i, layer in enumerate(layers):
        op, more = layer if isinstance(layer, tuple) else (layer, ())
        nodes.append(Node(f"n{i}", op, (prev, *more), f"layer {i}"))
        prev = f"n{i}"
    return Graph((("x", tuple(shape)),), tuple(nodes), prev)


def kinds(graph: Graph) -> list[type]:
    return [type(node.op) for node in graph.nodes]


def same_function(before: Graph, after: Graph, *, exact: bool, samples: int = 6) -> None:
    xs = R.uniform(-3, 3, size=(samples, *before.input_shape))
    with torch.no_grad():
        a, b = run(before, xs).numpy(), run(after, xs).numpy()
    assert a.shape == b.shape
    if exact:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- fold_constants


@pytest.mark.parametrize(
    ("binary", "const_first", "expected"),
    [
        (ops.Add, False, [ops.AddConst]),
        (ops.Add, True, [ops.AddConst]),
        (ops.Mul, True, [ops.MulConst]),
        (ops.Sub, False, [ops.AddConst]),
        (ops.Sub, True, [ops.Neg, ops.AddConst]),
        (ops.Div, False, [ops.DivConst]),
        (ops.Div, True, [ops.ConstantOf, ops.Div]),
    ],
)
def test_fold_constants_turns_constant_operands_into_const_ops(binary, const_first, expected):
    constant = [
        Node("c0", ops.ConstantOf(F(R.uniform(0.5, 2, size=3))), ()),
        Node("c", ops.Relu(), ("c0",)),
    ]
    inputs = ("c", "x") if const_first else ("x", "c")
    graph = Graph((("x", (2, 3)),), (*constant, Node("y", binary(), inputs)), "y")
    after = dead_code.run(fold_constants.run(graph))
    assert kinds(after) == expected
    same_function(graph, after, exact=True)


def test_fold_constants_leaves_enlarging_constants():
    nodes = (Node("c", ops.ConstantOf(rand(2, 3)), ()), Node("y", ops.Add(), ("x", "c")))
    graph = Graph((("x", (3,)),), nodes, "y")
    assert fold_constants.run(graph) is graph


def test_fold_constants_evaluates_constant_subgraphs():
    nodes = (
        Node("c", ops.ConstantOf(rand(2, 3)), ()),
        Node("t", ops.Transpose((1, 0)), ("c",)),
        Node("r", ops.Reshape((6,)), ("t",)),
        Node("y", ops.Add(), ("x", "r")),
    )
    graph = Graph((("x", (6,)),), nodes, "y")
    after = canonicalize(graph)
    assert kinds(after) == [ops.AddConst]
    same_function(graph, after, exact=True)


# --------------------------------------------------------- identities and dead code


def test_drop_identities_removes_every_kind_of_identity():
    graph = chain(
        (2, 3),
        ops.Reshape((2, 3)),
        ops.Transpose((0, 1)),
        ops.MulConst(F(np.ones(3))),
        ops.Relu(),
        ops.AddConst(F(np.zeros((2, 1)))),
        ops.DivConst(F(np.ones(1))),
        ops.Pad((0, 0, 0, 0)),
        ops.Slice((1,), (0,), (None,), (1,)),
        ops.Tanh(),
    )
    after = drop_identities.run(graph)
    assert kinds(after) == [ops.Relu, ops.Tanh]
    same_function(graph, after, exact=True)


def test_drop_identities_keeps_a_lone_output_and_real_ops():
    graph = chain((3,), ops.Reshape((3,)))
    assert drop_identities.run(graph).nodes == graph.nodes
    graph = chain((3,), ops.MulConst(F(np.array([1.0, 2.0, 1.0]))), ops.Relu())
    assert drop_identities.run(graph) is graph


def test_dead_code_drops_unread_branches():
    nodes = (
        Node("a", ops.Relu(), ("x",)),
        Node("dead", ops.Exp(), ("a",)),
        Node("y", ops.Tanh(), ("a",)),
    )
    graph = Graph((("x", (3,)),), nodes, "y")
    after = dead_code.run(graph)
    assert [node.name for node in after.nodes] == ["a", "y"]
    same_function(graph, after, exact=True)


def test_merge_reshapes():
    graph = chain((2, 3), ops.Reshape((3, 2)), ops.Reshape((6,)), ops.Relu())
    after = merge_reshapes.run(graph)
    assert kinds(after) == [ops.Reshape, ops.Relu]
    same_function(graph, after, exact=True)


# ------------------------------------------------------------------------- merge_neg


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ((ops.Neg(), ops.Neg(), ops.Relu()), [ops.Relu]),
        ((ops.Neg(), ops.MulConst(rand(3))), [ops.MulConst]),
        ((ops.MulConst(rand(3)), ops.Neg()), [ops.MulConst]),
        ((ops.Gemm(rand(4, 3), rand(4)), ops.Neg()), [ops.Gemm]),
        ((ops.Neg(), ops.Gemm(rand(4, 3), rand(4))), [ops.Gemm]),
    ],
)
def test_merge_neg_is_exact(layers, expected):
    graph = chain((3,), *layers)
    after = merge_neg.run(graph)
    assert kinds(after) == expected
    same_function(graph, after, exact=True)


def test_merge_neg_into_conv():
    conv = ops.Conv(rand(2, 1, 3, 3), rand(2), pads=(1, 1, 1, 1))
    graph = chain((1, 4, 4), conv, ops.Neg())
    after = merge_neg.run(graph)
    assert kinds(after) == [ops.Conv]
    same_function(graph, after, exact=True)


# ------------------------------------------------------------------- fuse_gemm_add


@pytest.mark.parametrize("shape", [(4,), (1, 4), ()])
def test_fuse_gemm_add_takes_last_axis_biases(shape):
    value = F(R.standard_normal(shape))
    graph = chain((2, 3), ops.Gemm(rand(4, 3), F(np.zeros(4))), ops.AddConst(value))
    after = fuse_gemm_add.run(graph)
    assert kinds(after) == [ops.Gemm]
    same_function(graph, after, exact=True)  # zero bias: 0 + c is exact


def test_fuse_gemm_add_refuses_other_shapes_and_shared_values():
    graph = chain((2, 3), ops.Gemm(rand(4, 3), rand(4)), ops.AddConst(rand(2, 1)))
    assert fuse_gemm_add.run(graph) is graph
    nodes = (
        Node("g", ops.Gemm(rand(4, 3), rand(4)), ("x",)),
        Node("a", ops.AddConst(rand(4)), ("g",)),
        Node("y", ops.Add(), ("a", "g")),
    )
    graph = Graph((("x", (3,)),), nodes, "y")
    assert fuse_gemm_add.run(graph) is graph


# -------------------------------------------------------------------- fold_affine


def test_batchnorm_affine_folds_into_conv():
    conv = ops.Conv(rand(3, 2, 3, 3), rand(3), strides=(2, 1), pads=(1, 0, 1, 2), group=1)
    graph = chain((2, 6, 5), conv, ops.MulConst(rand(3, 1, 1)), ops.AddConst(rand(3, 1, 1)))
    after = canonicalize(graph)
    assert kinds(after) == [ops.Conv]
    same_function(graph, after, exact=False)


def test_affine_folds_into_gemm_but_not_spatial_scales():
    graph = chain((3,), ops.Gemm(rand(4, 3), rand(4)), ops.MulConst(rand(4)), ops.AddConst(rand(4)))
    after = canonicalize(graph)
    assert kinds(after) == [ops.Gemm]
    same_function(graph, after, exact=False)
    conv = ops.Conv(rand(3, 2, 3, 3), rand(3))
    graph = chain((2, 5, 5), conv, ops.MulConst(rand(3, 3, 1)))
    assert fold_affine.run(graph) is graph


# --------------------------------------------------------------------- canonicalize


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.sampled_from(["neg", "mul", "add", "gemm", "reshape", "relu"]), max_size=8),
    arrays(np.float64, (3,), elements=st.floats(-2, 2)),
)
def test_canonicalize_keeps_the_function_of_random_chains(names, scale):
    makers = {
        "neg": lambda: ops.Neg(),
        "mul": lambda: ops.MulConst(F(scale)),
        "add": lambda: ops.AddConst(F(scale)),
        "gemm": lambda: ops.Gemm(rand(3, 3), rand(3)),
        "reshape": lambda: ops.Reshape((3,)),
        "relu": lambda: ops.Relu(),
    }
    graph = chain((3,), *(makers[name]() for name in names), ops.Tanh())
    after = canonicalize(graph)
    assert len(after.nodes) <= len(graph.nodes)
    same_function(graph, after, exact=False)
    assert canonicalize(after).nodes == after.nodes  # a fixed point


def test_exact_only_skips_rounding_passes():
    graph = chain((3,), ops.Gemm(rand(4, 3), rand(4)), ops.MulConst(rand(4)), ops.Neg())
    assert kinds(canonicalize(graph)) == [ops.Gemm]
    exact = canonicalize(graph, exact_only=True)
    assert kinds(exact) == [ops.Gemm, ops.MulConst]  # Neg merged exactly, no folding
    same_function(graph, exact, exact=True)
