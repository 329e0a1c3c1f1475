"""Branch and bound on VNN-COMP instances with published verdicts (ACAS Xu and smoke tests).

Verdicts come from ``expected.csv`` of the shared benchmarks; the instances chosen are
ones that branch and bound decides in a few dozen bounded leaves. Counterexamples are
replayed on ONNX Runtime here, independently of the engine.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from bab_toy import ToyCrown, load_onnx
from test_bab_synthetic import assert_tree_sound

from importers.vnnlib import VNNLib
from prover.engine.bab import BabConfig, branch_and_bound
from prover.engine.leaves import LinearBounder
from prover.engine.proof import count_leaves
from prover.options import Options
from prover.result import Verdict
from prover.spec import Box, Subproblem

ROOT = Path("/work/shared/benchmarks/vnncomp")
pytestmark = pytest.mark.skipif(not ROOT.exists(), reason="shared benchmarks not present")


def _expected(folder: str) -> dict[tuple[str, str], str]:
    with open(ROOT / folder / "expected.csv") as handle:
        return {(r["onnx"], r["vnnlib"]): r["verdict"] for r in csv.DictReader(handle)}


def _ort_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in meta.shape]
    feed = x.astype(np.float32).reshape(shape)
    return session.run(None, {meta.name: feed})[0].reshape(-1).astype(np.float64)


def _solve(folder: str, onnx: str, vnnlib: str, bounder_kind: str = "toy"):
    path = ROOT / folder / onnx
    graph = load_onnx(str(path))
    spec = VNNLib(ROOT / folder / vnnlib)
    bounder = ToyCrown(graph) if bounder_kind == "toy" else LinearBounder("crown")
    verdicts = []
    for sub in spec.subproblems(graph.input_shape, graph.output_size):

        def check(x, sub=sub):
            y = _ort_outputs(path, x)
            return sub.box.contains(x) and any(p.contains(y) for p in sub.unsafe)

        out = branch_and_bound(
            graph,
            sub,
            Options(),
            time.monotonic() + 60,
            check_candidate=check,
            config=BabConfig(bounder=bounder),
        )
        verdicts.append((sub, out))
        if out.verdict is not Verdict.HOLDS:
            break
    return graph, verdicts


ACAS = [
    ("onnx/ACASXU_run2a_1_9_batch_2000.onnx", "vnnlib/prop_1.vnnlib"),
    ("onnx/ACASXU_run2a_3_5_batch_2000.onnx", "vnnlib/prop_3.vnnlib"),
    ("onnx/ACASXU_run2a_1_9_batch_2000.onnx", "vnnlib/prop_3.vnnlib"),
    ("onnx/ACASXU_run2a_2_3_batch_2000.onnx", "vnnlib/prop_2.vnnlib"),
]


@pytest.mark.parametrize("onnx,vnnlib", ACAS)
def test_acasxu_known_verdicts(onnx, vnnlib):
    expected = _expected("acasxu")[(onnx, vnnlib)]
    graph, results = _solve("acasxu", onnx, vnnlib)
    last = results[-1][1]
    if expected == "unsat":
        assert all(out.verdict is Verdict.HOLDS for _, out in results), last.reason
        for sub, out in results:
            assert count_leaves(out.tree) == out.stats["leaves"]
            assert_tree_sound(out.tree, graph, sub.box, sub.unsafe, samples=200)
    else:
        assert last.verdict is Verdict.VIOLATED, last.reason
        sub = results[-1][0]
        x = last.counterexample
        assert x is not None and sub.box.contains(x)
        y = _ort_outputs(ROOT / "acasxu" / onnx, x)
        assert any(p.contains(y) for p in sub.unsafe)


@pytest.mark.parametrize(
    "onnx,vnnlib",
    [
        ("test_nano.onnx", "test_nano.vnnlib"),
        ("test_tiny.onnx", "test_tiny.vnnlib"),
        ("test_small.onnx", "test_small.vnnlib"),
        ("test_sat.onnx", "test_prop.vnnlib"),
        ("test_unsat.onnx", "test_prop.vnnlib"),
    ],
)
def test_vnncomp_smoke_instances(onnx, vnnlib):
    expected = _expected("test")[(onnx, vnnlib)]
    graph, results = _solve("test", onnx, vnnlib)
    verdicts = {out.verdict for _, out in results}
    if expected == "unsat":
        assert verdicts == {Verdict.HOLDS}
        for sub, out in results:
            assert_tree_sound(out.tree, graph, sub.box, sub.unsafe, samples=100)
    else:
        assert Verdict.VIOLATED in verdicts


def _linear_domain_works() -> bool:
    try:
        graph = load_onnx(str(ROOT / "test" / "test_small.onnx"))
        lo = torch.full((1, *graph.input_shape), -1.0, dtype=torch.float64)
        LinearBounder("crown").bound(graph, lo, -lo, torch.eye(graph.output_size).double())
    except Exception:  # the library domain is tested in its own suite
        return False
    return True


@pytest.mark.skipif(not _linear_domain_works(), reason="domains.linear not usable yet")
@pytest.mark.parametrize("onnx,vnnlib", ACAS[:2])
def test_acasxu_with_library_crown(onnx, vnnlib):
    expected = _expected("acasxu")[(onnx, vnnlib)]
    graph, results = _solve("acasxu", onnx, vnnlib, bounder_kind="library")
    assert expected == "unsat"
    for sub, out in results:
        assert out.verdict is Verdict.HOLDS, out.reason
        assert_tree_sound(out.tree, graph, sub.box, sub.unsafe, samples=200)


def test_alpha_pass_decides_the_hard_part_of_acasxu_3_3_property_2():
    """ACAS Xu 3_3 property 2 (unsat) restricted to the part of its box where the search
    without the alpha pass spends its time (plain CROWN with the heuristic slopes left
    over 9,000 leaves open there after 375,000 bounded ones). The alpha pass from the
    first round on, whose children start from their parent's slopes, closes it in a few
    dozen bounded leaves: HOLDS, with a tree that is sound on samples."""
    path = ROOT / "acasxu/onnx/ACASXU_run2a_3_3_batch_2000.onnx"
    graph = load_onnx(str(path))
    spec = VNNLib(ROOT / "acasxu/vnnlib/prop_2.vnnlib")
    (sub,) = spec.subproblems(graph.input_shape, graph.output_size)
    part = [(0.6, 0.68), (-0.01, 0.01), (-0.3, -0.27), (0.48, 0.5), (-0.5, -0.48)]
    lower = np.maximum(sub.box.lower.reshape(-1), [lo for lo, _ in part])
    upper = np.minimum(sub.box.upper.reshape(-1), [hi for _, hi in part])
    box = Box(lower.reshape(sub.box.lower.shape), upper.reshape(sub.box.upper.shape))
    part_sub = Subproblem(box, sub.unsafe)
    config = BabConfig(input_alpha_after=0)
    out = branch_and_bound(graph, part_sub, Options(), time.monotonic() + 120, config=config)
    assert out.verdict is Verdict.HOLDS, out.reason
    assert 0 < out.stats["alpha_bounded"] < out.stats["bounded"] < 1000, out.stats
    assert_tree_sound(out.tree, graph, box, sub.unsafe, samples=400)


def test_alpha_pass_waits_for_input_alpha_after_bounded_leaves():
    """ACAS Xu 1_1 property 2 (unsat) ends within a few hundred bounded leaves: by
    default (``input_alpha_after`` 4,096) without any alpha pass; with 0, it has some,
    except in a run that writes a certificate."""
    graph = load_onnx(str(ROOT / "acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx"))
    (sub,) = VNNLib(ROOT / "acasxu/vnnlib/prop_2.vnnlib").subproblems(
        graph.input_shape, graph.output_size
    )
    counts = []
    early = BabConfig(input_alpha_after=0)
    certificate = Options(certificate="unused.json")
    for options, config in [(Options(), BabConfig()), (Options(), early), (certificate, early)]:
        out = branch_and_bound(graph, sub, options, time.monotonic() + 120, config=config)
        assert out.verdict is Verdict.HOLDS, out.reason
        assert_tree_sound(out.tree, graph, sub.box, sub.unsafe, samples=200)
        counts.append(out.stats["alpha_bounded"])
    assert counts[0] == 0 < counts[1] and counts[2] == 0
