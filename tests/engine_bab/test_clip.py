"""Clipping boxes with the unsafe rows' linear bounds (prover.engine.clip) and its use in
branch and bound: only points no polytope can reach are cut away."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bab_synthetic import _graph, assert_tree_sound

from domains.linear.api import linear_bounds
from importers.vnnlib import VNNLib
from proofs.writer import _lower_tree
from prover import semantics
from prover.api import load
from prover.engine.bab import BabConfig, branch_and_bound
from prover.engine.clip import LOWER, UPPER, clip_boxes
from prover.engine.leaves import Rows
from prover.engine.proof import Clip, Closed, InputSplit, ReluSplit
from prover.engine.record import SearchRecord
from prover.errors import CertificateError
from prover.options import Options
from prover.result import Verdict
from prover.spec import Box, Polytope, Subproblem

ROOT = Path("/work/shared/benchmarks/vnncomp")


def _rows(sizes: list[int], n_out: int, rng) -> Rows:
    return Rows.stack(
        tuple(Polytope(rng.normal(size=(k, n_out)), rng.normal(size=k)) for k in sizes), n_out
    )


def _exact_min(a, c, lower, upper) -> Fraction:
    """Exact minimum of ``a . x + c`` over the box (Fractions of the floats)."""
    total = Fraction(float(c))
    for ai, lo, hi in zip(a.tolist(), lower.tolist(), upper.tolist(), strict=True):
        total += min(Fraction(ai) * Fraction(lo), Fraction(ai) * Fraction(hi))
    return total


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), sizes=st.sampled_from([[1], [3], [2, 2]]))
def test_every_step_cuts_a_slab_that_each_polytope_excludes_exactly(seed, n, sizes):
    rng = np.random.default_rng(seed)
    rows = _rows(sizes, 3, rng)
    batch, m = 4, rows.C.shape[0]
    lower = torch.from_numpy(rng.uniform(-1, 0, size=(batch, n)))
    upper = lower + torch.from_numpy(rng.uniform(0.01, 2, size=(batch, n)))
    A = torch.from_numpy(rng.normal(size=(batch, m, n)))
    # constants near the rows' thresholds, so that some faces move and some do not
    c = rows.d[None, :] - (A * (lower + upper)[:, None, :] / 2).sum(2)
    c = c + torch.from_numpy(rng.normal(scale=0.5, size=(batch, m)))
    clipped = clip_boxes(lower, upper, A, c, rows, passes=2)
    assert bool((clipped.lower >= lower).all() and (clipped.upper <= upper).all())
    assert bool((clipped.lower <= clipped.upper).all())
    for b in range(batch):
        lo, hi = lower[b].numpy().copy(), upper[b].numpy().copy()
        for dim, side, value in clipped.steps(b):
            assert lo[dim] < value < hi[dim]
            slab_lo, slab_hi = lo.copy(), hi.copy()
            if side == UPPER:
                slab_lo[dim], hi[dim] = value, value
            else:
                assert side == LOWER
                slab_hi[dim], lo[dim] = value, value
            for start, end in rows.spans:
                assert any(
                    _exact_min(A[b, r].numpy(), c[b, r], slab_lo, slab_hi)
                    > Fraction(float(rows.d[r]))
                    for r in range(start, end)
                ), "a slab that some polytope may reach was cut away"
        assert np.array_equal(lo, clipped.lower[b].numpy())
        assert np.array_equal(hi, clipped.upper[b].numpy())


def test_faces_move_when_the_rows_allow_it():
    """y = x on [0, 1]: the polytope {y <= 0.25} leaves only [0, 0.25 + tiny]."""
    rows = Rows.stack((Polytope(np.array([[1.0]]), np.array([0.25])),), 1)
    A = torch.ones((1, 1, 1), dtype=torch.float64)
    c = torch.zeros((1, 1), dtype=torch.float64)
    lower, upper = torch.zeros((1, 1), dtype=torch.float64), torch.ones((1, 1), dtype=torch.float64)
    clipped = clip_boxes(lower, upper, A, c, rows)
    assert 0.25 < float(clipped.upper[0, 0]) < 0.25 + 1e-6
    assert float(clipped.lower[0, 0]) == 0.0
    assert clipped.steps(0) == [(0, UPPER, float(clipped.upper[0, 0]))]
    # a non-finite coefficient never moves a face
    clipped = clip_boxes(lower, upper, A * torch.nan, c, rows)
    assert not bool(clipped.moved.any())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_points_cut_away_from_a_network_box_are_safe(seed):
    """With the linear domain's ``A x + c`` of a random ReLU network, no sampled point of
    the part cut away lies in the unsafe polytope (outputs evaluated concretely)."""
    rng = np.random.default_rng(seed)
    sizes = [3, 8, 8, 2]
    layers = [
        (rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(scale=0.3, size=o))
        for i, o in zip(sizes, sizes[1:], strict=False)
    ]
    graph = _graph(layers, 3)
    lower = torch.from_numpy(rng.uniform(-1, 0, size=(1, 3)))
    upper = lower + 1.0
    points = lower + torch.rand(4000, 3, dtype=torch.float64) * (upper - lower)
    ys = semantics.run(graph, points).reshape(len(points), -1).to(torch.float64)
    C = torch.from_numpy(rng.normal(size=(2, 2)))
    d = torch.quantile((ys @ C.T), 0.3, dim=0)  # the polytope holds some sampled points
    rows = Rows.stack((Polytope(C.numpy(), d.numpy()),), 2)
    result = linear_bounds(graph, lower, upper, C, return_coefficients=True)
    clipped = clip_boxes(lower, upper, result.coefficients.reshape(1, 2, 3), result.constant, rows)
    inside = ((points >= clipped.lower) & (points <= clipped.upper)).all(dim=1)
    unsafe = ((ys @ C.T) <= d).all(dim=1)
    assert not bool((unsafe & ~inside).any()), "an unsafe point was cut away"


def test_record_attaches_the_clip_to_the_input_split_only():
    record = SearchRecord()
    clip = Clip(((0, UPPER, 0.5),), {})
    record.clip(0, clip)
    below, above = record.split_input(0, 0, 0.25)
    record.close(below, Closed("interval"))
    record.close(above, Closed("interval"))
    tree = record.build()
    assert isinstance(tree, InputSplit) and tree.clips == (clip,)
    record = SearchRecord()
    record.clip(0, clip)
    for child in record.split_relu(0, "z", 0):
        record.close(child, Closed("interval"))
    with pytest.raises(ValueError, match="clipped, then split on a ReLU"):
        record.build()
    record = SearchRecord()  # narrowed, bounded again, narrowed again, then closed
    record.clip(0, clip)
    record.clip(0, clip)
    record.close(0, Closed("interval"))
    assert record.build() == Closed("interval", clips=(clip, clip))
    with pytest.raises(ValueError, match="already split or closed"):
        record.clip(0, clip)


def test_certificates_refuse_a_clipped_tree():
    leaf = Closed("interval")
    tree = InputSplit(0, 0.25, leaf, leaf, (Clip(((0, UPPER, 0.5),), {}),))
    with pytest.raises(CertificateError, match="clipping"):
        _lower_tree(tree, {}, None, {}, 1)
    with pytest.raises(CertificateError, match="clipping"):
        _lower_tree(Closed("interval", clips=tree.clips), {}, None, {}, 1)
    assert _lower_tree(ReluSplit("z", 0, leaf, leaf), {"z": 0}, None, {}, 1)["split"] == "relu"


def _has_clip(tree) -> bool:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (InputSplit, Closed)) and node.clips:
            return True
        if isinstance(node, InputSplit):
            stack += [node.below, node.above]
    return False


@pytest.mark.skipif(not ROOT.exists(), reason="shared benchmarks not present")
def test_acasxu_proof_with_clipping_is_sound_and_certificate_runs_do_without():
    """ACAS Xu 2_3 property 1 (unsat): HOLDS with and without clipping; the clipped tree
    is sound on samples; a run that writes a certificate records no clip."""
    graph = load(str(ROOT / "acasxu/onnx/ACASXU_run2a_2_3_batch_2000.onnx"))
    prop = VNNLib(ROOT / "acasxu/vnnlib/prop_1.vnnlib")
    (sub,) = prop.subproblems(graph.input_shape, graph.output_size)
    trees = {}
    # Without the alpha pass: with it, this instance closes before any box is clipped.
    for name, options, config in [
        ("clip", Options(), BabConfig(alpha="off")),
        ("plain", Options(), BabConfig(alpha="off", clip=0)),
        ("certificate", Options(certificate="unused.json"), BabConfig(alpha="off")),
    ]:
        out = branch_and_bound(graph, sub, options, time.monotonic() + 60, config=config)
        assert out.verdict is Verdict.HOLDS, (name, out.reason)
        trees[name] = out.tree
    assert _has_clip(trees["clip"])
    assert not _has_clip(trees["plain"]) and not _has_clip(trees["certificate"])
    assert_tree_sound(trees["clip"], graph, sub.box, sub.unsafe, samples=2000)


def test_a_fixed_input_does_not_make_every_clipped_box_bounded_again():
    """With one input fixed (lower == upper), boxes that keep most of their volume are
    split, not bounded again (the fixed side counts as kept): the search ends, HOLDS, with
    a sound tree that records clips."""
    rng = np.random.default_rng(3)
    sizes = [3, 12, 12, 1]
    layers = [
        (rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(scale=0.3, size=o))
        for i, o in zip(sizes, sizes[1:], strict=False)
    ]
    graph = _graph(layers, 3)
    lower, upper = np.array([-1.0, 0.25, -1.0]), np.array([1.0, 0.25, 1.0])
    points = rng.uniform(lower, upper, size=(20000, 3))
    ys = semantics.run(graph, torch.from_numpy(points)).reshape(-1).numpy()
    unsafe = Polytope(np.array([[1.0]]), np.array([ys.min() - 0.005]))  # y <= min - 0.005
    sub = Subproblem(Box(lower, upper), (unsafe,))
    out = branch_and_bound(graph, sub, Options(), time.monotonic() + 60, config=BabConfig())
    assert out.verdict is Verdict.HOLDS, out.reason
    # (counting the fixed side as lost, every clipped box was bounded again: 52 clips)
    assert 0 < out.stats["clipped"] <= 2 * out.stats["leaves"]
    assert_tree_sound(out.tree, graph, sub.box, sub.unsafe, samples=2000)
