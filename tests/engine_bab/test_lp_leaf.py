"""LP leaves (prover.engine.lp_leaf): exact decisions of leaves with every ReLU fixed.

Ground truth is independent of the prover: for a 2-D input and a fixed activation
pattern the region is a polygon, whose vertices are enumerated here with numpy (pairwise
intersections of the box edges and the split lines); the minimum of an affine output row
over the region is attained at a vertex. Dense grids check the closed leaves too.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proofs.writer import _leaf
from prover import semantics
from prover.engine.bab import BabConfig, branch_and_bound
from prover.engine.leaves import Rows
from prover.engine.lp_leaf import decide_leaves
from prover.engine.proof import Closed, InputSplit, ReluSplit
from prover.ir import ops
from prover.ir.graph import Graph, Node
from prover.options import Options
from prover.result import Verdict
from prover.spec import Box, Polytope, Subproblem

H = 3  # neurons per hidden layer
LO, HI = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
GRID = np.stack(np.meshgrid(*[np.linspace(-1, 1, 161)] * 2), -1).reshape(-1, 2)


def _net(seed: int, n_out: int = 2) -> Graph:
    rng = np.random.default_rng(seed)
    shapes = [(H, 2), (H, H), (n_out, H)]
    nodes, current = [], "x"
    for k, shape in enumerate(shapes):
        op = ops.Gemm(rng.normal(size=shape), 0.5 * rng.normal(size=shape[0]))
        nodes.append(Node(f"fc{k}", op, (current,)))
        current = f"fc{k}"
        if k < len(shapes) - 1:
            nodes.append(Node(f"relu{k}", ops.Relu(), (current,)))
            current = f"relu{k}"
    return Graph((("x", (2,)),), tuple(nodes), current)


def _weights(graph: Graph):
    return [(np.asarray(n.op.weight), np.asarray(n.op.bias)) for n in graph.nodes[::2]]


def _affine(graph: Graph, pattern: tuple[int, ...]):
    """Numpy affine maps on the pattern's region: split rows ``(a, e)`` (s z >= 0) and
    the output ``(W, b)``; pattern: +1 active / -1 inactive per hidden neuron."""
    (w0, b0), (w1, b1), (w2, b2) = _weights(graph)
    s0, s1 = np.array(pattern[:H], float), np.array(pattern[H:], float)
    G0, h0 = w0, b0
    G1, h1 = w1 @ ((s0 > 0)[:, None] * G0), w1 @ ((s0 > 0) * h0) + b1
    W, b = w2 @ ((s1 > 0)[:, None] * G1), w2 @ ((s1 > 0) * h1) + b2
    a = np.vstack([s0[:, None] * G0, s1[:, None] * G1])
    e = np.concatenate([s0 * h0, s1 * h1])
    return a, e, W, b


def _vertices(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Vertices of {x in [-1, 1]^2 : a x + e >= 0} (empty array when the region is empty)."""
    lines = [(np.array(r), c) for r, c in zip(a, e, strict=True)]
    lines += [(np.array(v), 1.0) for v in ([1, 0], [-1, 0], [0, 1], [0, -1])]
    A = np.vstack([a, [[1, 0], [-1, 0], [0, 1], [0, -1]]])
    E = np.concatenate([e, np.ones(4)])
    out = []
    for (r1, c1), (r2, c2) in itertools.combinations(lines, 2):
        M = np.vstack([r1, r2])
        if abs(np.linalg.det(M)) < 1e-12:
            continue
        x = np.linalg.solve(M, -np.array([c1, c2]))
        if (A @ x + E >= -1e-9).all():
            out.append(x)
    return np.array(out).reshape(-1, 2)


def _splits(patterns: list[tuple[int, ...]]) -> dict[str, torch.Tensor]:
    p = torch.tensor(patterns, dtype=torch.int8)
    return {"fc0": p[:, :H], "fc1": p[:, H:]}


def _in_region(graph: Graph, pattern, points: np.ndarray) -> np.ndarray:
    a, e, _, _ = _affine(graph, pattern)
    return (points @ a.T + e >= 0).all(axis=1)


def _decide(graph, patterns, C, d):
    rows = Rows.stack((Polytope(np.atleast_2d(C), np.atleast_1d(d)),), 2)
    n = len(patterns)
    lo = torch.from_numpy(np.tile(LO, (n, 1)))
    hi = torch.from_numpy(np.tile(HI, (n, 1)))
    return decide_leaves(graph, lo, hi, _splits(patterns), rows)


PATTERNS = list(itertools.product([-1, 1], repeat=2 * H))


@pytest.mark.parametrize("seed", [0, 1])
def test_closes_safe_leaves_and_finds_points_on_unsafe(seed):
    graph = _net(seed)
    c = np.array([1.0, -0.5])
    ys = semantics.run(graph, torch.from_numpy(GRID)).numpy() @ c
    patterns, mins = [], []
    for pattern in PATTERNS:
        a, e, W, b = _affine(graph, pattern)
        verts = _vertices(a, e)
        patterns.append(pattern)
        mins.append(np.min(verts @ W.T @ c + b @ c) if len(verts) else np.inf)
    # (a) safe: d below the region's minimum (any d for an empty region)
    d_safe = [m - 0.02 if np.isfinite(m) else 0.0 for m in mins]
    closed = 0
    for pattern, d in zip(patterns, d_safe, strict=True):
        dec = _decide(graph, [pattern], c, d)
        assert dec.closed[0] is not None, pattern
        inside = _in_region(graph, pattern, GRID)
        assert (ys[inside] > d).all()  # the claim holds on the grid
        closed += 1
    assert closed == len(PATTERNS)
    # (b) unsafe: d above the minimum of a region with interior: a replayable point
    found = 0
    for pattern, m in zip(patterns, mins, strict=True):
        inside = _in_region(graph, pattern, GRID)
        if inside.sum() < 3:
            continue
        d = m + 0.02
        dec = _decide(graph, [pattern], c, d)
        assert dec.closed[0] is None
        assert len(dec.points) == 1
        x = dec.points[0].numpy()
        assert (x >= LO).all() and (x <= HI).all()
        y = semantics.evaluate(graph, x).reshape(-1)
        assert y @ c <= d + 1e-9
        found += 1
    assert found >= 3


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 1000),
    point=st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
    offset=st.floats(-0.3, 0.3),
    angle=st.floats(0, 2 * np.pi),
    extra_row=st.booleans(),
)
def test_never_closes_a_reachable_polytope(seed, point, offset, angle, extra_row):
    """d perturbed around the region's exact minimum: closed only when unreachable.

    The pattern is the activation pattern of ``point``, so the region is not empty."""
    graph = _net(seed)
    (w0, b0), (w1, b1), _ = _weights(graph)
    z0 = w0 @ np.array(point) + b0
    z1 = w1 @ np.maximum(z0, 0) + b1
    pattern = tuple(int(v) for v in np.where(np.concatenate([z0, z1]) >= 0, 1, -1))
    a, e, W, b = _affine(graph, pattern)
    verts = _vertices(a, e)
    assert len(verts)
    c = np.array([np.cos(angle), np.sin(angle)])
    values = verts @ W.T @ c + b @ c
    d = float(values.min() + offset)
    C, dd = c[None], np.array([d])
    if extra_row:  # a second row that binds nowhere on the region (above its maximum)
        c2 = np.array([np.sin(angle), -np.cos(angle)])
        top = float((verts @ W.T @ c2 + b @ c2).max()) + 0.1
        C, dd = np.vstack([c2, c]), np.array([top, d])
    dec = _decide(graph, [pattern], C, dd)
    reachable = offset >= 0
    if dec.closed[0] is not None:
        assert not reachable
        inside = _in_region(graph, pattern, GRID)
        ys = semantics.run(graph, torch.from_numpy(GRID[inside])).numpy()
        assert ((ys @ C.T) > dd).any(axis=1).all()
    if offset > 1e-6:
        assert dec.closed[0] is None
    elif offset < -1e-3:
        assert dec.closed[0] is not None  # complete: the LP decides the leaf exactly


def _true_min(graph: Graph, c: np.ndarray) -> float:
    best = np.inf
    for pattern in PATTERNS:
        a, e, W, b = _affine(graph, pattern)
        verts = _vertices(a, e)
        if len(verts):
            best = min(best, float((verts @ W.T @ c + b @ c).min()))
    return best


def _lp_leaves(tree) -> list[Closed]:
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Closed):
            out.append(node)
        elif isinstance(node, InputSplit):
            stack += [node.below, node.above]
        elif isinstance(node, ReluSplit):
            stack += [node.inactive, node.active]
    return [leaf for leaf in out if "betas" in leaf.evidence]


def test_bab_completes_with_lp_leaves_where_depth_limited_search_does_not():
    graph = _net(3)
    c = np.array([1.0, -1.0])
    d = _true_min(graph, c) - 1e-3
    sub = Subproblem(Box(LO, HI), (Polytope(c[None], np.array([d])),))
    common = dict(mode="relu", samples=0, descent_steps=0, max_depth=2 * H + 1)
    outcomes = {}
    for lp in (True, False):
        cfg = BabConfig(lp_leaves=lp, **common)
        outcomes[lp] = branch_and_bound(graph, sub, Options(), time.monotonic() + 20, config=cfg)
    assert outcomes[True].verdict is Verdict.HOLDS
    assert _lp_leaves(outcomes[True].tree)
    ys = semantics.run(graph, torch.from_numpy(GRID)).numpy() @ c
    assert (ys > d).all()
    assert outcomes[False].verdict is Verdict.UNKNOWN
    # the unsafe twin: d just above the true minimum
    sub = Subproblem(Box(LO, HI), (Polytope(c[None], np.array([d + 2e-3])),))
    cfg = BabConfig(lp_leaves=True, **common)
    out = branch_and_bound(graph, sub, Options(), time.monotonic() + 20, config=cfg)
    assert out.verdict is Verdict.VIOLATED
    y = semantics.evaluate(graph, out.counterexample).reshape(-1)
    assert y @ c <= d + 2e-3


def test_writer_lowers_lp_leaf_to_an_assumption():
    betas = {"fc0": torch.zeros(1, H), "fc1": torch.ones(1, H)}
    lp = Closed("linear", {"rows": [0], "slopes": {}, "betas": betas}, "crown+lp")
    external: dict[str, str] = {}
    lowered = _leaf(lp, {"fc0": 0, "fc1": 1}, None, external, 1)
    assert lowered["rule"] == "assumed"
    assert "multipliers not replayed" in external[lowered["assumption"]]
    plain = Closed("linear", {"rows": [0], "slopes": {}}, "crown")
    assert _leaf(plain, {"fc0": 0, "fc1": 1}, None, {}, 1)["rule"] == "linear"


@pytest.mark.parametrize("seed", [0, 5])
def test_a_lying_lp_never_closes_a_reachable_leaf(seed, monkeypatch):
    """The float LP is not trusted: with a solver claiming infeasibility and returning
    arbitrary multipliers, only the rigorous re-bound decides (and it refuses)."""
    import prover.engine.lp_leaf as lp_leaf

    rng = np.random.default_rng(seed)

    def liar(G, e, lo, hi):
        return -1.0, (lo + hi) / 2, rng.uniform(0, 3, size=G.shape[0])

    monkeypatch.setattr(lp_leaf, "_phase_one", liar)
    graph = _net(seed)
    c = np.array([0.3, 1.0])
    ys = semantics.run(graph, torch.from_numpy(GRID)).numpy() @ c
    tried = 0
    for pattern in PATTERNS:
        inside = _in_region(graph, pattern, GRID)
        if not inside.any():
            continue
        d = float(ys[inside].min()) + 0.01  # reached on the grid
        dec = _decide(graph, [pattern], c, d)
        assert dec.closed[0] is None
        tried += 1
    assert tried >= 3


def test_phase_one_multipliers_are_valid():
    """The LP's optimum comes with multipliers that certify it on the box."""
    from prover.engine import lp_leaf

    rng = np.random.default_rng(3)
    G, e = rng.normal(size=(6, 3)), rng.normal(size=6) - 1.0
    lo, hi = -np.ones(3), np.ones(3)
    t, _, nu = lp_leaf._phase_one(G, e, lo, hi)
    worst = np.abs(nu @ G).sum() + nu @ e  # sum nu (G x + e) <= t on the box, at its max
    assert (nu >= 0).all() and worst <= t + 1e-6
    assert lp_leaf._phase_one(G * np.nan, e, lo, hi) is None  # refused input: stays open
