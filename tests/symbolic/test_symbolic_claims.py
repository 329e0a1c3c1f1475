"""Claims that must be decided, each checked against an independent evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prover.result import Verdict
from prover.symbolic import claim, parse_claim


def _sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


HOLDS = [
    "forall x in R^10: sum(softmax(x)) == 1",
    "forall x in R^5: softmax(x)[2] > 0",
    "forall x in R^6, i in 0..5: softmax(x)[i] > 0 and softmax(x)[i] < 1",
    "forall x in R: relu(x) >= 0",
    "forall x in R: sigmoid(x) + sigmoid(-x) == 1",
    "forall x in R: tanh(x) == 2*sigmoid(2*x) - 1",
    "forall x in R: relu(x) - relu(-x) == x",
    "forall x in [0,1]^5: sum(x) <= 5",
    "forall x, y in R: max(x, y) >= x and min(x, y) <= y",
    "forall x in R: exp(x) >= 1 + x",
    "forall x in R: sqrt(x^2) == abs(x)",
    "forall x in R^3: relu(x) >= 0",
    "forall x in R: leaky_relu(x, 0.01) >= 0.01 * x",
    "forall x in R: exists y in R: y > x",
]


@pytest.mark.parametrize("text", HOLDS)
def test_true_claims_hold(text):
    result = claim(text, timeout=20)
    assert result.verdict is Verdict.HOLDS, result.summary()
    assert result.method in ("sympy", "z3")
    assert result.soundness.startswith("real arithmetic")
    assert result.counterexample is None


def test_softmax_sums_to_one_in_dimension_1000():
    result = claim("forall x in R^1000: sum(softmax(x)) == 1", timeout=60)
    assert result.verdict is Verdict.HOLDS, result.summary()
    assert result.method == "sympy"


def test_sum_of_sigmoids_is_refuted_with_a_witness():
    result = claim("forall x in R^3: sum(sigmoid(x)) == 1")
    assert result.verdict is Verdict.VIOLATED
    x = result.counterexample
    assert isinstance(x, np.ndarray) and x.shape == (3,)
    assert abs(sum(_sigmoid(float(t)) for t in x) - 1.0) > 1e-6
    assert "counterexample" in result.reason


def test_leaky_relu_nonnegativity_is_refuted():
    result = claim("forall x in R: leaky_relu(x, 0.01) >= 0")
    assert result.verdict is Verdict.VIOLATED
    (x,) = result.counterexample
    assert x < 0  # leaky_relu(x) = 0.01 x < 0 exactly when x < 0
    assert result.method in ("numeric-witness", "z3")


def test_existential_without_witness_is_violated_without_counterexample():
    result = claim("exists x in R: x*x == -4")
    assert result.verdict is Verdict.VIOLATED
    assert result.counterexample is None
    assert "no witness exists" in result.reason


def test_box_claim_refuted_inside_the_box():
    result = claim("forall x in [0,1]^2: x[0] + x[1] <= 1.5")
    assert result.verdict is Verdict.VIOLATED
    x = result.counterexample
    assert np.all((0 <= x) & (x <= 1)) and x[0] + x[1] > 1.5


def test_existential_witness_is_recorded():
    result = claim("exists x in [0,1]: x > 0.5")
    assert result.verdict is Verdict.HOLDS
    assert result.counterexample is None
    (w,) = result.stats["witness"]["x"]
    assert 0.5 < w <= 1.0


def test_irrational_witness_from_z3():
    result = claim("exists x in R: x*x == 2")
    assert result.verdict is Verdict.HOLDS
    (w,) = result.stats["witness"]["x"]
    assert abs(w * w - 2) < 1e-12


def test_division_by_zero_makes_a_universal_claim_false():
    result = claim("forall x in R: x/x == 1")
    assert result.verdict is Verdict.VIOLATED
    assert result.counterexample.tolist() == [0.0]


def test_claim_with_index_variable_and_vector_comparison():
    assert claim("forall x in R^4: sigmoid(x) < 1").verdict is Verdict.HOLDS
    result = claim("forall x in R^4: sigmoid(x) < 0.9")
    assert result.verdict is Verdict.VIOLATED
    assert max(_sigmoid(float(t)) for t in result.counterexample) >= 0.9


def test_undecided_claim_is_unknown_with_reason():
    # true (e^5 > 5^3 and e^x grows faster), beyond SymPy's sign queries and the axioms
    result = claim("forall x in R: exp(x) >= x^3 or x < 5", timeout=3)
    assert result.verdict in (Verdict.UNKNOWN, Verdict.HOLDS, Verdict.VIOLATED)
    if result.verdict is Verdict.UNKNOWN:
        assert result.reason
    if result.verdict is Verdict.VIOLATED:
        (x,) = result.counterexample
        assert math.exp(x) < x**3 and x >= 5
    if result.verdict is Verdict.HOLDS:
        for x in np.linspace(5, 60, 200):
            assert math.exp(x) >= x**3


def test_false_claim_under_a_tiny_budget_is_never_holds():
    text = "forall x in R: (x - 0.1234567)^2 > 0.000000000000000000000000000001"
    result = claim(text, timeout=0.01)
    assert result.verdict is not Verdict.HOLDS
    assert result.verdict is Verdict.VIOLATED or result.reason


def test_true_polynomial_inequality_needs_nonlinear_arithmetic():
    result = claim("forall x, y, z in R: x^4*y^2 + y^4*z^2 + z^4*x^2 >= 3*x^2*y^2*z^2", timeout=20)
    assert result.verdict is not Verdict.VIOLATED
    if result.verdict is Verdict.UNKNOWN:
        assert result.reason


def test_ground_claims():
    assert claim("1 + 1 == 2").verdict is Verdict.HOLDS
    assert claim("2 ^ 10 < 1000").verdict is Verdict.VIOLATED


def test_parse_claim_structure():
    parsed = parse_claim("forall x in R^5, i in 0..4: softmax(x)[i] > 0")
    assert [b.name for b in parsed.binders] == ["x", "i"]
    assert parsed.binders[0].domain.dim == 5
    assert (parsed.binders[1].domain.lo, parsed.binders[1].domain.hi) == (0, 4)


def test_alternating_quantifiers_false_closed_formula():
    result = claim("exists x in R: forall y in R: y*y < x")
    assert result.verdict is Verdict.VIOLATED
    assert result.method == "z3"


def test_box_witness_lies_in_the_exact_box():
    from fractions import Fraction

    result = claim("forall x in [0, 0.1]: x < 0.1")
    assert result.verdict is Verdict.VIOLATED
    assert result.stats["witness_exact"] == ["1/10"]
    result = claim("exists x in [0.1, 0.2]^2: x[0] + x[1] > 0.35")
    assert result.verdict is Verdict.HOLDS
    for value in result.stats["witness"]["x"]:
        assert Fraction(1, 10) <= Fraction(float(value)) <= Fraction(2, 10)


def test_undefined_term_is_reported():
    result = claim("forall x in R: log(x) <= x")
    assert result.verdict is Verdict.VIOLATED
    assert result.counterexample[0] <= 0
    assert "undefined" in result.reason
    assert claim("forall x in [1, 100]: log(x) <= x").verdict is not Verdict.VIOLATED


def test_expansion_limit_gives_unknown():
    result = claim("forall x in R^1000, i in 0..999, j in 0..999: x[i] <= x[j] or x[i] > x[j]")
    assert result.verdict is Verdict.UNKNOWN
    assert "cases" in result.reason
