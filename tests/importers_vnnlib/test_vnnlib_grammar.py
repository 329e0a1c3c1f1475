"""VNN-LIB grammar features on inline texts: DNF, linear terms, strictness, numbers."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from importers.vnnlib import VNNLib
from prover.errors import PropertyError

DECLS = """
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
"""

MIXED = (
    DECLS
    + """
(assert (>= X_1 -1)) (assert (<= X_1 1))   ; common bounds
(assert (or
    (and (>= X_0 0) (<= X_0 1) (< Y_0 Y_1))
    (and (>= X_0 -1) (<= X_0 0)
         (or (> Y_0 2.5e0) (<= (- Y_0 Y_1) -3)))))
"""
)


def test_nested_or_and_with_mixed_inputs_and_outputs() -> None:
    prop = VNNLib(MIXED)
    subs = prop.subproblems((2,), 2)
    assert len(subs) == 2
    a, b = subs
    assert a.box.lower.tolist() == [0.0, -1.0] and a.box.upper.tolist() == [1.0, 1.0]
    assert b.box.lower.tolist() == [-1.0, -1.0] and b.box.upper.tolist() == [0.0, 1.0]
    (pa,) = a.unsafe
    assert pa.C.tolist() == [[1.0, -1.0]] and pa.d.tolist() == [0.0]  # closure of y0 < y1
    assert [p.C.tolist() for p in b.unsafe] == [[[-1.0, 0.0]], [[1.0, -1.0]]]
    assert [p.d.tolist() for p in b.unsafe] == [[-2.5], [-3.0]]


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        ((0.5, 0.0), (1.0, 1.0), False),  # y0 < y1 is strict
        ((0.5, 0.0), (0.9, 1.0), True),
        ((-0.5, 0.0), (3.0, 0.0), True),
        ((-0.5, 0.0), (2.5, 0.0), False),  # y0 > 2.5 is strict
        ((-0.5, 0.0), (0.0, 3.0), True),  # y0 - y1 <= -3, not strict
        ((0.5, 0.0), (3.0, 0.0), False),  # outputs of box B, input in box A only
        ((0.0, 0.0), (3.0, 0.0), True),  # x0 = 0 lies in both boxes
        ((0.5, 1.5), (0.9, 1.0), False),  # x1 outside the common bounds
    ],
)
def test_violated_at_pairs_input_and_output_of_the_same_disjunct(x, y, expected) -> None:
    assert VNNLib(MIXED).violated_at(np.array(x), np.array(y)) is expected


def test_several_boxes_refuse_input_free_questions() -> None:
    prop = VNNLib(MIXED)
    with pytest.raises(PropertyError, match="violated_at"):
        prop.violated_by(np.array([3.0, 0.0]))
    with pytest.raises(PropertyError, match="subproblems"):
        prop.unsafe_polytopes(2)


def test_linear_terms_and_number_formats() -> None:
    text = (
        DECLS
        + """
(assert (<= -1 X_0 1.5e-1))                       ; a chain: two bounds
(assert (and (>= X_1 -.5) (<= X_1 +2.5E+0)))
(assert (<= (+ Y_0 (* -1 Y_1)) 0))
(assert (>= (- Y_0 Y_1 (- 2)) (* 0.5 (+ Y_1 4))))
(assert (<= (/ Y_0 2) (* Y_1 -3)))
(assert (= Y_1 -2))
"""
    )
    prop = VNNLib(text)
    (sub,) = prop.subproblems((2,), 2)
    assert sub.box.lower.tolist() == [-1.0, -0.5]
    assert sub.box.upper.tolist() == [0.15, 2.5]
    (poly,) = sub.unsafe
    # y0 - y1 <= 0;  0.5 (y1 + 4) - (y0 - y1 + 2) <= 0;  y0 / 2 + 3 y1 <= 0;  y1 = -2
    assert poly.C.tolist() == [[1, -1], [-1, 1.5], [0.5, 3], [0, 1], [0, -1]]
    assert poly.d.tolist() == [0, 0, 0, -2, 2]
    assert prop.violated_by(np.array([-2.5, -2.0]))
    assert not prop.violated_by(np.array([-3.5, -2.0]))
    assert not prop.violated_by(np.array([-2.5, -1.5]))


def test_strict_input_bounds_are_closed_in_the_box_but_exact_in_violated_at() -> None:
    text = (
        DECLS + "(assert (> X_0 0)) (assert (< X_0 1)) (assert (<= -1 X_1 1)) (assert (>= Y_0 0))"
    )
    prop = VNNLib(text)
    (sub,) = prop.subproblems((2,), 2)
    assert sub.box.lower.tolist() == [0.0, -1.0] and sub.box.upper.tolist() == [1.0, 1.0]
    assert not prop.violated_at(np.array([0.0, 0.0]), np.array([1.0, 0.0]))
    assert not prop.violated_at(np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    assert prop.violated_at(np.array([0.5, 0.0]), np.array([0.0, 0.0]))
    assert not prop.violated_at(np.array([0.5, 0.0]), np.array([np.nan, 0.0]))


def test_empty_disjuncts_are_dropped_and_equal_boxes_grouped() -> None:
    text = (
        DECLS
        + """
(assert (<= -1 X_1 1))
(assert (or (and (>= X_0 1) (<= X_0 0) (>= Y_0 0))     ; empty input region
            (and (> X_0 0) (< X_0 0) (>= Y_0 1))       ; empty (strict)
            (and (>= X_0 0) (<= X_0 1) (>= Y_0 2))
            (and (<= X_0 1) (>= X_0 0) (>= Y_1 3))     ; same box, other order
            (and (>= X_0 0) (<= X_0 1) (<= 1 0))))     ; false constant comparison
"""
    )
    prop = VNNLib(text)
    (sub,) = prop.subproblems((2,), 2)
    assert [p.C.tolist() for p in sub.unsafe] == [[[-1.0, 0.0]], [[0.0, -1.0]]]
    assert len(prop.disjuncts) == 2


def test_inexact_constants_are_rounded_outward() -> None:
    text = DECLS + "(assert (<= -1 X_0 1)) (assert (<= (+ X_1 0.1) 0.3)) (assert (>= X_1 -1))"
    text += "(assert (<= (+ Y_0 0.1) 0.3))"
    prop = VNNLib(text)
    (sub,) = prop.subproblems((2,), 2)
    exact = Fraction(0.3) - Fraction(0.1)
    assert Fraction(float(sub.box.upper[1])) >= exact
    assert Fraction(float(sub.unsafe[0].d[0])) >= exact
    assert float(sub.unsafe[0].d[0]) - float(exact) < 1e-15


def test_reshaping_and_size_mismatches() -> None:
    prop = VNNLib(MIXED)
    assert prop.subproblems((1, 2, 1), 2)[0].box.shape == (1, 2, 1)
    with pytest.raises(PropertyError, match="declares 2 inputs"):
        prop.subproblems((3,), 2)
    with pytest.raises(PropertyError, match="declares 2 outputs"):
        prop.subproblems((2,), 3)


def test_ignored_commands_and_path_input(tmp_path) -> None:
    path = tmp_path / "p.vnnlib"
    path.write_text("(set-logic QF_LRA)\n" + MIXED + "(check-sat)\n(get-model)\n(exit)\n")
    prop = VNNLib(path)
    assert len(prop.boxes) == 2
    assert str(path) in prop.describe()
    assert VNNLib(str(path)).n_inputs == 2
