"""Branch and bound on small networks whose answers are known analytically."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from bab_toy import ToyCrown, affine_layers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prover import semantics
from prover.engine.bab import BabConfig, BabOutcome, branch_and_bound
from prover.engine.proof import Closed, InputSplit, ProofTree, ReluSplit, count_leaves
from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.options import Options
from prover.result import Verdict
from prover.spec import Box, Polytope, Subproblem

OPTIONS = Options()


def _graph(layers: list[tuple[np.ndarray, np.ndarray]], n_in: int) -> Graph:
    nodes, current = [], "x"
    for k, (w, b) in enumerate(layers):
        nodes.append(
            Node(f"fc{k}", ops.Gemm(np.asarray(w, float), np.asarray(b, float)), (current,))
        )
        current = f"fc{k}"
        if k < len(layers) - 1:
            nodes.append(Node(f"relu{k}", ops.Relu(), (current,)))
            current = f"relu{k}"
    return Graph((("x", (n_in,)),), tuple(nodes), current)


def identity_gap_net() -> Graph:
    """y = relu(x1 - x2) - relu(x2 - x1) - (x1 - x2), identically zero."""
    w0 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]])
    w1 = np.array([[1.0, -1.0, -1.0, 1.0]])
    # the last two hidden units carry x1 - x2 as relu(x1-x2) - relu(x2-x1)... use a
    # linear pass-through instead: relu(t) - relu(-t) = t, so y = 0 exactly.
    return _graph([(w0, np.zeros(4)), (w1, np.zeros(1))], 2)


def _bab(graph, box, polytopes, deadline=20.0, **config) -> BabOutcome:
    sub = Subproblem(box, tuple(polytopes))
    cfg = BabConfig(bounder=ToyCrown(graph), **config)
    return branch_and_bound(graph, sub, OPTIONS, time.monotonic() + deadline, config=cfg)


def _leaf_of(tree: ProofTree, graph: Graph, x: np.ndarray) -> Closed | None:
    """Descend the proof tree with the concrete input ``x`` (iteratively); None when a
    clip (``clips`` of a split or a leaf) cut ``x`` away from the box of that node."""
    values = None
    node = tree
    flat = x.reshape(-1)
    while True:
        if isinstance(node, (InputSplit, Closed)):
            for dim, side, value in (step for clip in node.clips for step in clip.steps):
                if (side > 0 and flat[dim] > value) or (side < 0 and flat[dim] < value):
                    return None
        if isinstance(node, Closed):
            return node
        if isinstance(node, InputSplit):
            node = node.below if flat[node.dim] <= node.value else node.above
        else:
            if values is None:
                values = semantics.run(graph, torch.from_numpy(x[None]), keep=True)
            pre = values[node.node].reshape(-1)[node.index]
            node = node.inactive if pre <= 0 else node.active


def assert_tree_sound(tree, graph, box, polytopes, samples=400, seed=0):
    """Every sampled point reaches a closed leaf whose cited rows it really satisfies, or
    was cut away by a clip and is then outside every unsafe polytope."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(box.lower, box.upper, size=(samples, *box.shape))
    ys = semantics.run(graph, torch.from_numpy(points)).reshape(samples, -1).numpy()
    for x, y in zip(points, ys, strict=False):
        leaf = _leaf_of(tree, graph, x)
        if leaf is None:
            assert not any(p.contains(y) for p in polytopes), "a clip cut away an unsafe point"
            continue
        assert leaf.rule in ("linear", "interval", "infeasible")
        assert leaf.rule != "infeasible", "a real point reached an infeasible leaf"
        if leaf.rule == "linear":
            for p, row in zip(polytopes, leaf.evidence["rows"], strict=False):
                assert p.C[row] @ y > p.d[row]


@pytest.mark.parametrize(
    "config",
    [{}, {"lookahead": 3}, {"lookahead": 2, "lookahead_score": "min", "starve": 0.0}],
    ids=["default", "lookahead", "lookahead-min"],
)
def test_identity_gap_needs_splitting_and_holds(config):
    graph = identity_gap_net()
    box = Box([-1.0, -1.0], [1.0, 1.0])
    unsafe = [Polytope([[1.0]], [-0.05]), Polytope([[-1.0]], [-0.05])]  # |y| >= 0.05
    root = ToyCrown(graph).bound(
        graph,
        torch.tensor([[-1.0, -1.0]], dtype=torch.float64),
        torch.tensor([[1.0, 1.0]], dtype=torch.float64),
        torch.tensor([[1.0], [-1.0]], dtype=torch.float64),
    )
    assert not bool((root.lower > -0.05).all()), "the root alone must not close it"
    out = _bab(graph, box, unsafe, **config)
    assert out.verdict is Verdict.HOLDS, out.reason
    assert count_leaves(out.tree) == out.stats["leaves"] > 1
    assert_tree_sound(out.tree, graph, box, unsafe)


def test_violated_at_known_point_is_replayed():
    # y = relu(x1) + relu(x2); unsafe y >= 1.9 is reachable only near the corner (1, 1).
    graph = _graph([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))], 2)
    box = Box([-1.0, -1.0], [1.0, 1.0])
    unsafe = [Polytope([[-1.0]], [-1.9])]
    seen = []

    def check(x):
        seen.append(x)
        return bool(semantics.evaluate(graph, x)[0] >= 1.9 and box.contains(x))

    sub = Subproblem(box, tuple(unsafe))
    out = branch_and_bound(
        graph,
        sub,
        OPTIONS,
        time.monotonic() + 20,
        check_candidate=check,
        config=BabConfig(bounder=ToyCrown(graph)),
    )
    assert out.verdict is Verdict.VIOLATED
    assert out.counterexample is not None and box.contains(out.counterexample)
    assert semantics.evaluate(graph, out.counterexample)[0] >= 1.9
    assert any(np.array_equal(out.counterexample, x) for x in seen)


def test_rejected_candidates_never_make_violated():
    graph = _graph([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))], 2)
    box = Box([-1.0, -1.0], [1.0, 1.0])
    sub = Subproblem(box, (Polytope([[-1.0]], [-1.9]),))
    out = branch_and_bound(
        graph,
        sub,
        OPTIONS,
        time.monotonic() + 1.0,
        check_candidate=lambda x: False,
        config=BabConfig(bounder=ToyCrown(graph), max_depth=12),
    )
    assert out.verdict is Verdict.UNKNOWN
    assert out.counterexample is None and out.tree is None


def test_timeout_gives_unknown():
    graph = identity_gap_net()
    box = Box([-1.0, -1.0], [1.0, 1.0])
    unsafe = [Polytope([[1.0]], [-1e-9])]
    out = _bab(graph, box, unsafe, deadline=-1.0)
    assert out.verdict is Verdict.UNKNOWN and "timeout" in out.reason


class _NanBounder(ToyCrown):
    def bound(self, graph, lower, upper, C, *, splits=None, alpha=False, intermediate=None):
        result = super().bound(graph, lower, upper, C, splits=splits)
        result.lower = torch.full_like(result.lower, float("nan"))
        return result


class _InfBounder(ToyCrown):
    def bound(self, graph, lower, upper, C, *, splits=None, alpha=False, intermediate=None):
        result = super().bound(graph, lower, upper, C, splits=splits)
        result.lower = torch.full_like(result.lower, float("inf"))
        return result


@pytest.mark.parametrize("bounder", [_NanBounder, _InfBounder])
def test_non_finite_bounds_never_prove(bounder):
    graph = identity_gap_net()
    sub = Subproblem(Box([-1.0, -1.0], [1.0, 1.0]), (Polytope([[1.0]], [-0.05]),))
    cfg = BabConfig(bounder=bounder(graph), max_depth=6)
    out = branch_and_bound(graph, sub, OPTIONS, time.monotonic() + 5, config=cfg)
    assert out.verdict is Verdict.UNKNOWN


def test_bounder_exceptions_propagate():
    class Broken(ToyCrown):
        def bound(self, *args, **kwargs):
            raise RuntimeError("boom")

    graph = identity_gap_net()
    sub = Subproblem(Box([-1.0, -1.0], [1.0, 1.0]), (Polytope([[1.0]], [-0.05]),))
    with pytest.raises(RuntimeError, match="boom"):
        branch_and_bound(
            graph, sub, OPTIONS, time.monotonic() + 5, config=BabConfig(bounder=Broken(graph))
        )


def test_relu_splitting_proves_identity_gap():
    graph = identity_gap_net()
    box = Box([-1.0, -1.0], [1.0, 1.0])
    unsafe = [Polytope([[1.0]], [-0.05]), Polytope([[-1.0]], [-0.05])]
    out = _bab(graph, box, unsafe, mode="relu")
    assert out.verdict is Verdict.HOLDS, out.reason
    assert out.stats["mode"] == "relu"
    tree = out.tree
    assert isinstance(tree, ReluSplit)
    assert_tree_sound(tree, graph, box, unsafe)


def test_deterministic():
    graph = identity_gap_net()
    box = Box([-1.0, -1.0], [1.0, 1.0])
    unsafe = [Polytope([[1.0]], [-0.01])]
    a, b = _bab(graph, box, unsafe), _bab(graph, box, unsafe)
    assert a.verdict is b.verdict is Verdict.HOLDS
    assert a.tree == b.tree
    assert a.stats["bounded"] == b.stats["bounded"]


def _random_net(seed: int, n_in: int = 2, hidden: int = 6) -> Graph:
    rng = np.random.default_rng(seed)
    layers = [
        (rng.normal(size=(hidden, n_in)), rng.normal(size=hidden) * 0.3),
        (rng.normal(size=(hidden, hidden)) / np.sqrt(hidden), rng.normal(size=hidden) * 0.3),
        (rng.normal(size=(2, hidden)) / np.sqrt(hidden), np.zeros(2)),
    ]
    return _graph(layers, n_in)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    threshold=st.floats(-1.0, 1.5),
    mode=st.sampled_from(["input", "relu"]),
    lookahead=st.sampled_from([1, 3]),
)
def test_random_nets_agree_with_sampling(seed, threshold, mode, lookahead):
    """Unsafe: y0 - y1 >= threshold. HOLDS must survive dense sampling; VIOLATED is real."""
    graph = _random_net(seed)
    box = Box([-1.0, -1.0], [1.0, 1.0])
    unsafe = [Polytope([[-1.0, 1.0]], [-threshold])]
    out = _bab(graph, box, unsafe, deadline=10.0, mode=mode, lookahead=lookahead)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 81)] * 2), -1).reshape(-1, 2)
    ys = semantics.run(graph, torch.from_numpy(grid)).numpy()
    reachable = bool(((ys[:, 0] - ys[:, 1]) >= threshold).any())
    if out.verdict is Verdict.HOLDS:
        assert not reachable
        assert_tree_sound(out.tree, graph, box, unsafe, samples=200, seed=seed)
    elif out.verdict is Verdict.VIOLATED:
        x = out.counterexample
        y = semantics.evaluate(graph, x)
        assert box.contains(x) and y[0] - y[1] >= threshold
    if reachable:
        assert out.verdict is not Verdict.HOLDS


def test_toy_crown_is_sound_by_sampling():
    """The test scaffold itself: its bounds hold at sampled points (keeps the tests honest)."""
    graph = _random_net(3, n_in=3)
    layers, _ = affine_layers(graph)
    assert len(layers) == 3
    rng = np.random.default_rng(1)
    lo = torch.from_numpy(rng.uniform(-1, 0, size=(8, 3)))
    hi = lo + torch.from_numpy(rng.uniform(0, 1, size=(8, 3)))
    C = torch.tensor([[1.0, -1.0], [0.0, 1.0]], dtype=torch.float64)
    res = ToyCrown(graph).bound(graph, lo, hi, C)
    t = torch.from_numpy(rng.uniform(size=(8, 500, 3)))
    x = lo[:, None] + t * (hi - lo)[:, None]
    y = semantics.run(graph, x.reshape(-1, 3)).reshape(8, 500, 2)
    assert bool(((y @ C.T) >= res.lower[:, None] - 1e-12).all())
    assert bool(((y @ C.T) >= (x @ res.A.transpose(1, 2) + res.c[:, None]) - 1e-9).all())


def _library_bounder():
    try:
        from prover.engine.leaves import LinearBounder

        return LinearBounder("crown", alpha_steps=5)
    except Exception:  # the library domain is tested in its own suite
        return None


@pytest.mark.skipif(_library_bounder() is None, reason="domains.linear not available")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    threshold=st.floats(-1.0, 1.5),
    mode=st.sampled_from(["input", "relu"]),
)
def test_library_crown_agrees_with_sampling(seed, threshold, mode):
    """The same check through the library's CROWN / alpha-CROWN with split constraints."""
    graph = _random_net(seed)
    box = Box([-1.0, -1.0], [1.0, 1.0])
    unsafe = [Polytope([[-1.0, 1.0]], [-threshold])]
    sub = Subproblem(box, tuple(unsafe))
    cfg = BabConfig(bounder=_library_bounder(), mode=mode)
    out = branch_and_bound(graph, sub, OPTIONS, time.monotonic() + 10, config=cfg)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 81)] * 2), -1).reshape(-1, 2)
    ys = semantics.run(graph, torch.from_numpy(grid)).numpy()
    reachable = bool(((ys[:, 0] - ys[:, 1]) >= threshold).any())
    if out.verdict is Verdict.HOLDS:
        assert not reachable
        assert_tree_sound(out.tree, graph, box, unsafe, samples=200, seed=seed)
    elif out.verdict is Verdict.VIOLATED:
        y = semantics.evaluate(graph, out.counterexample)
        assert box.contains(out.counterexample) and y[0] - y[1] >= threshold
    if reachable:
        assert out.verdict is not Verdict.HOLDS
