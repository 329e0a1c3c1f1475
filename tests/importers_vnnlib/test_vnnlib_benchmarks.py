"""The VNN-LIB importer on every property file of the shared VNN-COMP benchmarks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from importers.vnnlib import VNNLib

ROOT = Path("/work/shared/benchmarks/vnncomp")
FILES = sorted(ROOT.glob("*/vnnlib/*.vnnlib")) + sorted(ROOT.glob("test/*.vnnlib"))

pytestmark = pytest.mark.skipif(not FILES, reason="shared benchmarks not available")


def _asserted_numbers(path: Path) -> dict[tuple[str, int], list[float]]:
    """Independent reading of the simple bound lines: ``(assert (OP X_i NUMBER))``."""
    found: dict[tuple[str, int], list[float]] = {}
    pattern = re.compile(r"\(assert \((<=|>=) X_(\d+) ([^\s()]+)\)\)")
    for op, index, number in pattern.findall(path.read_text()):
        found.setdefault((op, int(index)), []).append(float(number))
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_benchmark_file_parses(path: Path) -> None:
    prop = VNNLib(path)
    subproblems = prop.subproblems((prop.n_inputs,), prop.n_outputs)
    assert subproblems
    for sub in subproblems:
        assert sub.box.shape == (prop.n_inputs,)
        assert np.all(sub.box.lower <= sub.box.upper)
        for poly in sub.unsafe:
            assert poly.C.shape[1] == prop.n_outputs
    # Files made only of simple bounds: the box is exactly what the lines say.
    simple = _asserted_numbers(path)
    if len(simple) == 2 * prop.n_inputs and len(subproblems) == 1:
        box = subproblems[0].box
        for i in range(prop.n_inputs):
            assert box.upper[i] == min(simple[("<=", i)])
            assert box.lower[i] == max(simple[(">=", i)])


def test_acas_prop_1_is_one_box_and_one_row() -> None:
    prop = VNNLib(ROOT / "acasxu/vnnlib/prop_1.vnnlib")
    (sub,) = prop.subproblems((5,), 5)
    assert sub.box.lower.tolist() == [0.6, -0.5, -0.5, 0.45, -0.5]
    assert sub.box.upper.tolist() == [0.679857769, 0.5, 0.5, 0.5, -0.45]
    (poly,) = sub.unsafe
    assert poly.C.tolist() == [[-1.0, 0.0, 0.0, 0.0, 0.0]]  # y0 >= 3.99...  <=>  -y0 <= -3.99...
    assert poly.d.tolist() == [-3.991125645861615]
    assert prop.violated_by(np.array([3.991125645861615, 0, 0, 0, 0]))  # >= is not strict
    assert not prop.violated_by(np.array([3.99112564586161, 0, 0, 0, 0]))


def test_acas_prop_6_has_two_boxes_of_four_polytopes() -> None:
    prop = VNNLib(ROOT / "acasxu/vnnlib/prop_6.vnnlib")
    subs = prop.subproblems((1, 5), 5)
    assert [len(s.unsafe) for s in subs] == [4, 4]
    assert subs[0].box.shape == (1, 5)
    assert subs[0].box.lower[0, 1] == 0.11140846 and subs[1].box.upper[0, 1] == -0.11140846
    # Y_j <= Y_0  <=>  y_j - y_0 <= 0
    for sub in subs:
        rows = sorted(tuple(p.C[0]) for p in sub.unsafe)
        assert len({r.index(1.0) for r in rows}) == 4
        assert all(r[0] == -1.0 and sum(r) == 0 for r in rows)


def test_acas_prop_7_and_8_conjunctions_inside_disjunctions() -> None:
    p7 = VNNLib(ROOT / "acasxu/vnnlib/prop_7.vnnlib").subproblems((5,), 5)
    p8 = VNNLib(ROOT / "acasxu/vnnlib/prop_8.vnnlib").subproblems((5,), 5)
    assert [[q.C.shape[0] for q in s.unsafe] for s in p7] == [[3, 3]]
    assert [[q.C.shape[0] for q in s.unsafe] for s in p8] == [[2, 2, 2]]


@pytest.mark.parametrize(
    "path", sorted(ROOT.glob("mnist_fc/vnnlib/*.vnnlib")), ids=lambda p: p.name
)
def test_mnist_is_one_box_and_nine_polytopes(path: Path) -> None:
    prop = VNNLib(path)
    (sub,) = prop.subproblems((1, 28, 28), 10)
    label = int(re.search(r"label: (\d+)", path.read_text()).group(1))
    eps = float(re.search(r"_([0-9.]+)\.vnnlib$", path.name).group(1))
    assert sub.box.shape == (1, 28, 28)
    assert np.all(sub.box.upper - sub.box.lower <= 2 * eps + 1e-6)
    assert np.all(sub.box.lower >= 0) and np.all(sub.box.upper <= 1)
    assert len(sub.unsafe) == 9
    others = set()
    for poly in sub.unsafe:  # Y_j >= Y_label  <=>  y_label - y_j <= 0
        (row,) = poly.C
        assert row[label] == 1.0 and poly.d.tolist() == [0.0]
        (j,) = np.flatnonzero(row == -1.0)
        others.add(int(j))
        assert np.count_nonzero(row) == 2
    assert others == set(range(10)) - {label}
    y = np.zeros(10)
    y[label] = 1.0
    assert not prop.violated_by(y)
    y[(label + 1) % 10] = 1.0  # a tie is a violation (>=)
    assert prop.violated_by(y)
    assert prop.violated_at(sub.box.lower, y)
