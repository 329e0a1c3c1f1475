"""Random identities (some deliberately wrong): verdicts agree with independent numbers.

The expressions are generated as trees, printed as claim text, decided by ``claim`` and
evaluated independently here with mpmath (50 digits), never with the prover's code.
"""

from __future__ import annotations

import mpmath
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prover.result import Verdict
from prover.symbolic import claim

mpmath.mp.dps = 50

_UNARY = ("relu", "abs", "sigmoid", "neg")
_BINARY = ("+", "*", "max")


def _terms(depth: int):
    leaf = st.one_of(st.just(("x",)), st.integers(-3, 3).map(lambda k: ("num", k)))
    if depth == 0:
        return leaf
    sub = _terms(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(_UNARY), sub),
        st.tuples(st.sampled_from(_BINARY), sub, sub),
    )


def text(t) -> str:
    head = t[0]
    if head == "x":
        return "x"
    if head == "num":
        return f"({t[1]})"
    if head == "neg":
        return f"(-{text(t[1])})"
    if head in ("relu", "abs", "sigmoid"):
        return f"{head}({text(t[1])})"
    if head == "max":
        return f"max({text(t[1])}, {text(t[2])})"
    return f"({text(t[1])} {head} {text(t[2])})"


def value(t, x):
    head = t[0]
    if head == "x":
        return x
    if head == "num":
        return mpmath.mpf(t[1])
    if head == "neg":
        return -value(t[1], x)
    if head == "relu":
        return max(value(t[1], x), mpmath.mpf(0))
    if head == "abs":
        return abs(value(t[1], x))
    if head == "sigmoid":
        return 1 / (1 + mpmath.exp(-value(t[1], x)))
    a, b = value(t[1], x), value(t[2], x)
    return {"+": a + b, "*": a * b, "max": max(a, b)}[head]


# Rewrites that keep the value, and ones that (usually) change it.
_GOOD = {
    "relu": lambda a: ("max", a, ("num", 0)),
    "abs": lambda a: ("max", a, ("neg", a)),
    "sigmoid": lambda a: ("+", ("num", 1), ("neg", ("sigmoid", ("neg", a)))),
    "neg": lambda a: ("*", ("num", -1), a),
}
_BAD = {
    "relu": lambda a: ("max", a, ("num", 1)),
    "abs": lambda a: a,
    "sigmoid": lambda a: ("sigmoid", ("neg", a)),
    "neg": lambda a: a,
}


def rewrite(t, bad: bool):
    """Rewrite the outermost unary node (identity-preserving unless ``bad``)."""
    if t[0] in _GOOD:
        return (_BAD if bad else _GOOD)[t[0]](t[1])
    if t[0] in _BINARY:
        return (t[0], rewrite(t[1], bad), t[2])
    return t


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    term=st.one_of(_terms(3), st.tuples(st.sampled_from(_UNARY), _terms(2))),
    bad=st.booleans(),
    op=st.sampled_from(["==", "<=", ">="]),
)
def test_verdicts_agree_with_independent_evaluation(term, bad, op):
    other = rewrite(term, bad)
    statement = f"forall x in R: {text(term)} {op} {text(other)}"
    result = claim(statement, timeout=5)

    def holds_at(x) -> bool:
        a, b = value(term, x), value(other, x)
        gap = a - b
        tol = mpmath.mpf(10) ** -30 * (1 + abs(a) + abs(b))
        return {"==": abs(gap) <= tol, "<=": gap <= tol, ">=": gap >= -tol}[op]

    if result.verdict is Verdict.HOLDS:
        for x in np.concatenate([np.linspace(-6, 6, 25), [-50.0, 50.0, 0.5, -0.5]]):
            assert holds_at(mpmath.mpf(float(x))), (statement, x)
    elif result.verdict is Verdict.VIOLATED:
        (x,) = result.counterexample
        a, b = value(term, mpmath.mpf(float(x))), value(other, mpmath.mpf(float(x)))
        gap = a - b
        assert {"==": gap != 0, "<=": gap > 0, ">=": gap < 0}[op], (statement, x)
    else:
        assert result.reason
