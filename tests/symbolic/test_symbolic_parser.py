"""The claim parser rejects hostile and malformed text cleanly and executes nothing."""

from __future__ import annotations

import os
import sys

import pytest

from prover.errors import SpecError
from prover.symbolic import claim, parse_claim

_EVENTS: list[str] = []
_WATCH = {"exec", "compile", "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn"}
_active = [False]


def _hook(event, args):
    if _active[0] and event in _WATCH:
        _EVENTS.append(event)


sys.addaudithook(_hook)

HOSTILE = [
    "__import__('os').system('touch /tmp/pwned_claim')",
    "x.__class__",
    "forall x in R: x.__class__ == 1",
    "lambda: 1",
    "forall x in R: exec('1') == 1",
    "forall x in R: exec(1) == 1",
    "forall x in R: eval(x) > 0",
    "forall x in R: __builtins__ > 0",
    "forall x in R: _x > 0",
    "forall x in R: x > 0; import os",
    "forall x in R: getattr(x, 'y') > 0",
    "forall x in R: open(1) > 0",
    "forall x in R: [x for x in R] > 0",
    "forall x in R: {x} > 0",
    "forall x in R: x @ x > 0",
    "forall x in R: `x` > 0",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_a_spec_error_and_runs_nothing(text):
    _EVENTS.clear()
    _active[0] = True
    try:
        with pytest.raises(SpecError):
            parse_claim(text)
        with pytest.raises(SpecError):
            claim(text)
    finally:
        _active[0] = False
    assert _EVENTS == []
    assert not os.path.exists("/tmp/pwned_claim")


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("forall x in R: (x > 0", 22),
        ("forall x in R: x >", 19),
        ("forall x in R x > 0", 15),
        ("forall x in R: y > 0", 16),
        ("forall x in R^3: x[3] > 0", 20),
        ("forall x in R: x[0] > 0", 17),
        ("forall x in R^2: x > 1 > 0", 24),
        ("forall x in R: frob(x) > 0", 16),
        ("forall x in R: x + 1", 18),
        ("forall x in R: (x > 0) + 1 > 0", 19),
        ("forall x in R^2, y in R^3: x + y > 0", 30),
        ("forall x in [1, 0]: x > 0", 19),
        ("forall x in R: 1.2.3 > 0", 19),
        ("forall x in R: x > 0 and forall y in R: y > 0", 26),
        ("forall x in R, x in R: x > 0", 16),
        ("forall x in R^0: x > 0", 15),
    ],
)
def test_malformed_text_reports_its_position(text, column):
    with pytest.raises(SpecError) as info:
        parse_claim(text)
    assert info.value.line == 1
    assert info.value.column == column, str(info.value)
    assert f"column {column}" in str(info.value)


def test_position_on_later_line():
    with pytest.raises(SpecError) as info:
        parse_claim("forall x in R:\n  x > 0 and\n  y < 1")
    assert info.value.line == 3


@pytest.mark.parametrize(
    "text",
    [
        "forall x in R: " + "(" * 5000 + "x" + ")" * 5000 + " > 0",
        "forall x in R: " + "-" * 5000 + "x > 0",
        "forall x in R: " + "not " * 3000 + "x > 0",
        "forall x in R: x" + "^x" * 3000 + " > 0",
        "forall x in R: " + " + ".join(["x"] * 3000) + " > 0",
        "forall x in R: " + "relu(" * 2000 + "x" + ")" * 2000 + " > 0",
        "x" * 100_000,
    ],
)
def test_deep_or_long_input_is_a_clean_spec_error(text):
    with pytest.raises(SpecError):
        parse_claim(text)


def test_non_string_is_a_spec_error():
    with pytest.raises(SpecError):
        parse_claim(b"forall x in R: x > 0")  # type: ignore[arg-type]


def test_accepted_syntax_variants():
    for text in [
        "forall x in R: x ** 2 >= 0",
        "forall x in R: x ^ 2 >= 0",
        "forall x in R, y in R: x*y == y*x",
        "forall x, y in [-1, 1]^3: sum(x * y) <= 3",
        "exists x in R: not (x > 0) implies x <= 0",
        "forall x in R^4, i in 0..3: abs(x[i]) <= max(x) or abs(x[i]) <= -min(x)",
        "forall x in R: 1e-3 * x != 2E2",
        "forall x in R^3: softmax(x) > 0",
    ]:
        parse_claim(text)


def test_precedence_is_conventional():
    parsed = parse_claim("forall x in R: -x^2 <= 0")
    # unary minus binds looser than power: -(x^2)
    assert parsed.body.left.op == "-" and parsed.body.left.operand.op == "^"
    parsed = parse_claim("forall x in R: x > 0 or x < 1 and x == 2")
    assert parsed.body.op == "or" and parsed.body.right.op == "and"
