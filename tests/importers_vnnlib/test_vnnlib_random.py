"""Random nested formulas: the normal form agrees with a direct evaluation of the formula.

A reference evaluator (written here, independent of the importer) evaluates the formula
tree exactly at concrete points. Two claims are checked:

* ``violated_at(x, y)`` equals the reference on every point (exact, strictness included);
* soundness of the normal form: whenever the formula holds at (x, y), some subproblem's
  box contains x and one of its polytopes contains y.
"""

from __future__ import annotations

import operator
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from importers.vnnlib import VNNLib

OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
VALUES = [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]

input_leaf = st.tuples(
    st.just("in"), st.sampled_from(sorted(OPS)), st.integers(0, 1), st.sampled_from(VALUES)
)
output_leaf = st.tuples(
    st.just("out"),
    st.sampled_from(sorted(OPS)),
    st.tuples(st.sampled_from([-1, 0, 1, 2]), st.sampled_from([-1, 0, 1, 2])),
    st.sampled_from([-1.0, 0.0, 0.5, 1.0]),
)
formulas = st.recursive(
    st.one_of(input_leaf, output_leaf),
    lambda children: st.tuples(
        st.sampled_from(["and", "or"]), st.lists(children, min_size=1, max_size=3)
    ),
    max_leaves=8,
)


def render(f) -> str:
    if f[0] in ("and", "or"):
        return f"({f[0]} " + " ".join(render(g) for g in f[1]) + ")"
    if f[0] == "in":
        return f"({f[1]} X_{f[2]} {f[3]})"
    (a0, a1), c = f[2], f[3]
    return f"({f[1]} (+ (* {a0} Y_0) (* {a1} Y_1)) {c})"


def evaluate(f, x, y) -> bool:
    if f[0] == "and":
        return all(evaluate(g, x, y) for g in f[1])
    if f[0] == "or":
        return any(evaluate(g, x, y) for g in f[1])
    if f[0] == "in":
        return OPS[f[1]](Fraction(x[f[2]]), Fraction(f[3]))
    (a0, a1), c = f[2], f[3]
    return OPS[f[1]](a0 * Fraction(y[0]) + a1 * Fraction(y[1]), Fraction(c))


TEXT = """(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 -1)) (assert (<= X_0 1)) (assert (>= X_1 -1)) (assert (<= X_1 1))
(assert {formula})
"""

points = st.tuples(
    st.tuples(st.sampled_from(VALUES), st.sampled_from(VALUES)),
    st.tuples(st.sampled_from(VALUES), st.sampled_from(VALUES)),
)


@settings(max_examples=60, deadline=None)
@given(formula=formulas, pts=st.lists(points, min_size=1, max_size=30))
def test_normal_form_matches_direct_evaluation(formula, pts) -> None:
    prop = VNNLib(TEXT.format(formula=render(formula)))
    subs = prop.subproblems((2,), 2)
    for x, y in pts:
        x, y = np.array(x), np.array(y)
        expected = bool(np.all(np.abs(x) <= 1)) and evaluate(formula, x, y)
        assert prop.violated_at(x, y) is expected
        if expected:
            assert any(s.box.contains(x) and any(p.contains(y) for p in s.unsafe) for s in subs), (
                "the normal form lost a violating point"
            )
