"""Unit tests of the branch-and-bound parts: the search record, closing rule, branching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prover.engine.branching import choose_relu, input_scores, relu_scores
from prover.engine.falsify import box_points
from prover.engine.leaves import LeafBounds, Rows, candidates, close_mask, row_weights
from prover.engine.proof import Closed, InputSplit, ReluSplit, count_leaves
from prover.engine.record import SearchRecord
from prover.spec import Polytope


def test_record_builds_nested_tree():
    record = SearchRecord()
    below, above = record.split_input(0, 1, 0.5)
    inactive, active = record.split_relu(above, "h", 3)
    record.close(below, Closed("linear", {"rows": [0]}))
    record.close(inactive, Closed("infeasible"))
    record.close(active, Closed("interval"))
    tree = record.build()
    assert isinstance(tree, InputSplit) and (tree.dim, tree.value) == (1, 0.5)
    assert tree.below == Closed("linear", {"rows": [0]})
    assert isinstance(tree.above, ReluSplit) and (tree.above.node, tree.above.index) == ("h", 3)
    assert tree.above.inactive.rule == "infeasible" and tree.above.active.rule == "interval"
    assert count_leaves(tree) == 3


def test_record_refuses_open_leaves_and_double_use():
    record = SearchRecord()
    below, _ = record.split_input(0, 0, 0.0)
    record.close(below, Closed("interval"))
    with pytest.raises(ValueError):
        record.build()  # the "above" leaf is open
    with pytest.raises(ValueError):
        record.close(below, Closed("interval"))
    with pytest.raises(ValueError):
        record.split_input(0, 1, 0.0)


def test_record_deep_chain_builds_without_recursion():
    record = SearchRecord()
    node = 0
    for _ in range(5000):
        below, node = record.split_input(node, 0, 0.0)
        record.close(below, Closed("interval"))
    record.close(node, Closed("interval"))
    assert count_leaves(record.build()) == 5001


def _rows() -> Rows:
    polytopes = (
        Polytope([[1.0, 0.0], [0.0, 1.0]], [0.0, 1.0]),
        Polytope([[-1.0, 0.0]], [2.0]),
    )
    return Rows.stack(polytopes, 2)


def test_close_mask_needs_strict_finite_bounds():
    rows = _rows()
    lower = torch.tensor(
        [
            [0.5, -9.0, 2.5],  # row 0 of p0 > 0, p1: 2.5 > 2
            [0.0, 1.0, 3.0],  # equal is not enough: p0 open
            [float("nan"), 2.0, float("inf")],  # p0 by row 1; inf never proves
        ],
        dtype=torch.float64,
    )
    excluded, row = close_mask(lower, rows)
    assert excluded.tolist() == [[True, True], [False, True], [True, False]]
    assert row[0, 0] == 0 and row[2, 0] == 1


def test_candidates_are_box_corners_minimising_the_linear_bound():
    rows = _rows()
    lo = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)
    up = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    A = torch.tensor([[[1.0, -1.0], [0.0, 2.0], [-3.0, 0.0]]], dtype=torch.float64)
    bounds = LeafBounds(lower=torch.tensor([[-1.0, -5.0, 0.0]], dtype=torch.float64), A=A)
    points = candidates(lo, up, bounds, rows)[0]
    assert points[0].tolist() == [0.0, 0.0]  # center
    assert points[1].tolist() == [-1.0, 2.0]  # tightest row of p0 is row 0: min x0 - x1
    assert points[2].tolist() == [-1.0, -2.0]  # sum of p0's rows: x0 + x1
    assert points[3].tolist() == [1.0, 2.0]  # p1: min -3 x0; x1 (coefficient 0) at upper


def test_input_scores_prefer_influential_wide_dims_and_skip_degenerate_ones():
    rows = Rows.stack((Polytope([[1.0, 0.0]], [0.0]),), 2)
    lo = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    up = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    A = torch.tensor([[[0.1, 5.0, 7.0]]], dtype=torch.float64)
    bounds = LeafBounds(lower=torch.tensor([[-1.0]], dtype=torch.float64), A=A)
    opened = torch.ones((1, 1), dtype=torch.bool)
    width = torch.ones(3, dtype=torch.float64)
    scores = input_scores(lo, up, width, bounds, rows, opened)
    assert scores[0].argmax() == 1
    assert scores[0, 2] == -np.inf  # zero width cannot be split
    plain = input_scores(lo, up, width, LeafBounds(lower=bounds.lower), rows, opened)
    assert torch.isfinite(plain[0, :2]).all() and plain[0, 2] == -np.inf


def test_relu_choice_maps_back_to_layer_and_neuron():
    f64 = torch.float64
    inter = {
        "a": (torch.tensor([[-1.0, 1.0]], dtype=f64), torch.tensor([[1.0, 2.0]], dtype=f64)),
        "b": (
            torch.tensor([[-4.0, -1.0, -2.0]], dtype=f64),
            torch.tensor([[4.0, 1.0, -1.0]], dtype=f64),
        ),
    }
    splits = {
        "a": torch.zeros((1, 2), dtype=torch.int8),
        "b": torch.zeros((1, 3), dtype=torch.int8),
    }
    scores = relu_scores(inter, splits, ["a", "b"])
    layer, neuron, ok = choose_relu(scores, [2, 3])
    assert (int(layer), int(neuron), bool(ok)) == (1, 0, True)  # b[0]: gap 4*4/8 = 2
    splits["b"][0, 0] = 1
    layer, neuron, ok = choose_relu(relu_scores(inter, splits, ["a", "b"]), [2, 3])
    assert (int(layer), int(neuron)) in ((0, 0), (1, 1))  # both gaps 0.5: lowest index wins
    assert (int(layer), int(neuron)) == (0, 0)
    splits["a"][0, 0] = -1
    splits["b"][0, 1] = 1
    _, _, ok = choose_relu(relu_scores(inter, splits, ["a", "b"]), [2, 3])
    assert not bool(ok)  # nothing unstable and free is left


def test_babsr_scores_prefer_the_neuron_whose_upper_line_the_bound_uses():
    f64 = torch.float64
    # two unstable neurons; neuron 0 has the larger triangle but the open row uses its
    # lower line (coefficient > 0), neuron 1 the upper line (coefficient < 0).
    inter = {"a": (torch.tensor([[-4.0, -1.0]], dtype=f64), torch.tensor([[4.0, 1.0]], dtype=f64))}
    splits = {"a": torch.zeros((1, 2), dtype=torch.int8)}
    lam = {"a": torch.tensor([[[5.0, -1.0], [0.0, 0.0]]], dtype=f64)}
    assert int(relu_scores(inter, splits, ["a"]).argmax()) == 0  # intercept alone
    weights = torch.tensor([[1.0, 0.0]], dtype=f64)
    assert int(relu_scores(inter, splits, ["a"], lam, weights).argmax()) == 1
    # a row whose polytope is already excluded (weight 0) does not count
    lam_closed = {"a": torch.tensor([[[5.0, 0.0], [0.0, -9.0]]], dtype=f64)}
    assert int(relu_scores(inter, splits, ["a"], lam_closed, weights).argmax()) == 0


def test_row_weights_pick_each_open_polytopes_best_row():
    rows = Rows(
        torch.zeros((3, 1), dtype=torch.float64),
        torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64),
        ((0, 2), (2, 3)),
    )
    lower = torch.tensor([[-1.0, -0.5, 1.0], [-2.0, float("nan"), -3.0]], dtype=torch.float64)
    w = row_weights(lower, rows)
    assert w.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]  # polytope 2 excluded on leaf 0


def test_box_points_stay_inside_and_half_of_them_visit_faces():
    lo = torch.tensor([[0.0, -2.0, 5.0]], dtype=torch.float64)
    hi = torch.tensor([[1.0, 2.0, 5.5]], dtype=torch.float64)
    pts = box_points(lo, hi, 4000, torch.Generator().manual_seed(3))
    assert pts.shape == (1, 4000, 3)
    assert bool((pts >= lo.unsqueeze(1)).all()) and bool((pts <= hi.unsqueeze(1)).all())
    on_face = (pts == lo.unsqueeze(1)) | (pts == hi.unsqueeze(1))
    assert not bool(on_face[0, 0::2].any())  # the uniform half never lands exactly on a face
    share = float(on_face[0, 1::2].double().mean())
    assert 0.2 < share < 0.3  # each coordinate of the other half: a face w.p. 1/4
    again = box_points(lo, hi, 4000, torch.Generator().manual_seed(3))
    assert torch.equal(pts, again)


def test_an_unavailable_device_is_a_clear_error():
    from prover import Box, OutputBounds, prove
    from prover.engine.bab import resolve_device
    from prover.errors import ProverError

    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ProverError, match="only cpu and cuda"):
        resolve_device("meta")
    with pytest.raises(ProverError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ProverError, match="no CUDA device"):
            resolve_device("cuda")
        net = torch.nn.Sequential(torch.nn.Linear(2, 1))
        box = Box(np.zeros(2), np.ones(2))
        with pytest.raises(ProverError, match="no CUDA device"):  # not an UNKNOWN result
            prove(net, OutputBounds(upper=[10.0]), box, device="cuda")
