"""Random ReLU networks: soundness, split constraints, and tightness orderings."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from domains.linear.alpha import Margins
from domains.linear.api import bound_linear, bound_outputs, linear_bounds
from prover.semantics import run

# Bounds are compared up to this relative slack: the orderings below hold over the reals,
# and each method widens by its own (tiny) rounding-error bound.
SLACK = 1e-9

nets = st.tuples(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 6), min_size=2, max_size=5),
    st.floats(0.01, 2.0),
)


def _setup(h, seed, widths, width):
    rng = np.random.default_rng(seed)
    graph = h.mlp(rng, widths)
    lower, upper = h.random_box(rng, (widths[0],), batch=4, width=width)
    return rng, graph, lower, upper


def _tol(*xs):
    return SLACK * (1 + max(float(x.abs().max()) for x in xs))


@settings(max_examples=30, deadline=None)
@given(nets)
def test_sound_and_tighter_than_intervals(h, net):
    seed, widths, width = net
    rng, graph, lower, upper = _setup(h, seed, widths, width)
    ys = h.outputs(graph, h.samples(lower, upper, 800, rng))
    lo, hi = bound_outputs(graph, lower, upper)
    assert (ys >= lo.unsqueeze(1)).all() and (ys <= hi.unsqueeze(1)).all()
    il, iu = h.interval_bounds(graph, lower, upper)
    assert (lo >= il - _tol(il)).all() and (hi <= iu + _tol(iu)).all()


@settings(max_examples=30, deadline=None)
@given(nets, st.sampled_from(["crown", "deeppoly"]))
def test_alpha_at_least_crown_and_direct_at_least_combined(h, net, policy):
    seed, widths, width = net
    rng, graph, lower, upper = _setup(h, seed, widths, width)
    m = 3
    C = torch.tensor(rng.normal(size=(m, widths[-1])))
    ys = h.outputs(graph, h.samples(lower, upper, 500, rng))
    values = ys @ C.T
    plain = linear_bounds(graph, lower, upper, C, policy=policy)
    alpha = linear_bounds(graph, lower, upper, C, policy=policy, alpha_steps=8)
    for result in (plain, alpha):
        assert (values >= result.lower.unsqueeze(1)).all()
    tol = _tol(plain.lower)
    # The returned bounds are those of the returned slopes, never worse than the start.
    assert (alpha.lower.sum(1) >= plain.lower.sum(1) - tol).all()
    replay = linear_bounds(graph, lower, upper, C, slopes=alpha.slopes)
    assert torch.allclose(replay.lower, alpha.lower, rtol=0, atol=tol)
    # C y bounded directly is at least as tight as combining bounds of y when there is at
    # most one ReLU layer: each neuron's relaxation picked for the net coefficient lies
    # between the lines the combination mixes, on the pre-activation's whole range, and a
    # pre-activation of the first layer is affine in the input. Deeper, CROWN is not
    # monotone in that sense (the difference of two relaxations, itself non-negative, is
    # back-substituted through earlier relaxations), and the combination can win (e.g.
    # seed 58, widths [2, 4, 6, 6]); both bounds are sound, checked above and below.
    if len(widths) <= 3:
        n = widths[-1]
        eye = torch.eye(n, dtype=torch.float64)
        out = linear_bounds(graph, lower, upper, torch.cat([eye, -eye])).lower
        out_lo, out_hi = out[:, :n], -out[:, n:]
        combined = out_lo @ C.clamp(min=0).T + out_hi @ C.clamp(max=0).T
        assert (plain.lower >= combined - tol).all()
    direct = bound_linear(graph, lower, upper, C)
    assert (direct >= plain.lower).all() and (values >= direct.unsqueeze(1)).all()


@settings(max_examples=30, deadline=None)
@given(nets)
def test_alpha_for_margins_is_sound_and_never_worse_on_its_objective(h, net):
    """Slopes optimised for two polytopes' best rows: the bounds stay sound on samples,
    are those of the returned slopes, and the objective is never below plain CROWN's."""
    seed, widths, width = net
    rng, graph, lower, upper = _setup(h, seed, widths, width)
    C = torch.tensor(rng.normal(size=(4, widths[-1])))
    margins = Margins(torch.tensor(rng.normal(size=4)), ((0, 3), (3, 4)))
    values = h.outputs(graph, h.samples(lower, upper, 500, rng)) @ C.T
    plain = linear_bounds(graph, lower, upper, C)
    alpha = linear_bounds(graph, lower, upper, C, alpha_steps=6, margins=margins)
    assert (values >= alpha.lower.unsqueeze(1)).all()
    tol = _tol(plain.lower, margins.d)
    assert (margins.objective(alpha.lower) >= margins.objective(plain.lower) - tol).all()
    replay = linear_bounds(graph, lower, upper, C, slopes=alpha.slopes)
    assert torch.allclose(replay.lower, alpha.lower, rtol=0, atol=tol)


def test_margins_objective_counts_each_open_polytope_by_its_best_row():
    margins = Margins(torch.tensor([0.0, 1.0, 0.5]), ((0, 2), (2, 3)))
    lower = torch.tensor(
        [
            [-2.0, 0.5, 0.0],  # best rows: -0.5 (row 1 against d 1) and -0.5
            [3.0, -9.0, 2.0],  # both polytopes excluded: nothing left to gain
            [float("nan"), float("-inf"), 1.0],  # first polytope has no finite row
        ],
        dtype=torch.float64,
    )
    objective = margins.objective(lower)
    assert objective[:2].tolist() == [-1.0, 0.0]
    assert objective[2] == float("-inf")


@settings(max_examples=30, deadline=None)
@given(nets, st.integers(0, 2**32 - 1), st.booleans())
def test_split_constraints_are_sound(h, net, split_seed, alpha):
    seed, widths, width = net
    rng, graph, lower, upper = _setup(h, seed, widths, width)
    split_rng = np.random.default_rng(split_seed)
    relus = [n for n in graph.nodes if type(n.op).__name__ == "Relu"]
    splits = {
        n.inputs[0]: torch.tensor(
            split_rng.choice(
                [-1, 0, 1], size=(4, graph.shapes[n.inputs[0]][0]), p=[0.25, 0.5, 0.25]
            ),
            dtype=torch.int8,
        )
        for n in relus
    }
    C = torch.tensor(rng.normal(size=(2, widths[-1])))
    result = linear_bounds(
        graph, lower, upper, C, splits=splits, alpha_steps=6 if alpha else 0, beta=alpha
    )
    if alpha:  # the multipliers replay to the same bounds
        replay = linear_bounds(
            graph, lower, upper, C, splits=splits, slopes=result.slopes, betas=result.betas
        )
        same = torch.isclose(replay.lower, result.lower, rtol=0, atol=_tol(result.lower))
        assert (same | (replay.lower == result.lower)).all()
    pts = h.samples(lower, upper, 3000, rng)
    with torch.no_grad():
        values = run(graph, pts.reshape(-1, widths[0]), keep=True)
    keep = torch.ones(pts.shape[:2], dtype=torch.bool)
    for name, split in splits.items():
        pre = values[name].reshape(4, pts.shape[1], -1)
        ok = torch.where(
            split.unsqueeze(1) > 0, pre >= 0, torch.where(split.unsqueeze(1) < 0, pre <= 0, True)
        )
        keep &= ok.all(-1)
    y = values[graph.output].reshape(4, pts.shape[1], -1) @ C.T
    for b in range(4):
        if keep[b].any():
            assert not result.infeasible[b]
            assert (y[b][keep[b]] >= result.lower[b]).all()
            for name, (il, iu) in result.intermediate.items():
                pre = values[name].reshape(4, pts.shape[1], -1)[b][keep[b]]
                assert (pre >= il[b].reshape(-1)).all() and (pre <= iu[b].reshape(-1)).all()
        if result.infeasible[b]:
            assert torch.isinf(result.lower[b]).all() and (result.lower[b] > 0).all()


@settings(max_examples=25, deadline=None)
@given(nets)
def test_parent_bounds_reused_on_a_sub_box(h, net):
    seed, widths, width = net
    rng, graph, lower, upper = _setup(h, seed, widths, width)
    C = torch.tensor(rng.normal(size=(2, widths[-1])))
    parent = linear_bounds(graph, lower, upper, C)
    t = torch.tensor(rng.uniform(size=lower.shape))
    mid = lower + (upper - lower) * t
    child_lo, child_hi = mid, upper  # a sub-box of each box
    child = linear_bounds(graph, child_lo, child_hi, C, intermediate=parent.intermediate)
    # (Not compared with the child computed alone: tighter early bounds can change the
    # adaptive slopes of later layers, so neither is always tighter; both are sound.)
    pts = h.samples(child_lo, child_hi, 500, rng)
    with torch.no_grad():
        values = run(graph, pts.reshape(-1, widths[0]), keep=True)
    for name, (il, iu) in child.intermediate.items():
        pl, pu = parent.intermediate[name]
        assert (il >= pl).all() and (iu <= pu).all()
        pre = values[name].reshape(4, pts.shape[1], -1)
        assert (pre >= il.reshape(4, 1, -1)).all() and (pre <= iu.reshape(4, 1, -1)).all()
    ys = values[graph.output].reshape(4, pts.shape[1], -1) @ C.T
    assert (ys >= child.lower.unsqueeze(1)).all()
