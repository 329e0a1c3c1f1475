"""Malformed and hostile VNN-LIB files: a SpecError naming the problem and its line."""

from __future__ import annotations

import re

import pytest

from importers.vnnlib import VNNLib
from prover.errors import SpecError

HEAD = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n"  # lines 1-2
BOUNDS = "(assert (>= X_0 0))\n(assert (<= X_0 1))\n"  # lines 3-4 (after HEAD)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("(assert (>= Y_0 1)\n", 5, "never closed"),
        ("(assert (>= Y_0 1)))\n", 5, "unexpected ')'"),
        ("\n(assert (>= Z_0 1))\n", 6, "unknown symbol 'Z_0'"),
        ("(assert (>= Y_1 1))\n", 5, "Y_1 is used but not declared"),
        ("(assert (>= (* Y_0 Y_0) 1))\n", 5, "non-linear"),
        ("(assert (>= (* X_0 Y_0) 1))\n", 5, "non-linear"),
        ("(assert (>= (/ Y_0 Y_0) 1))\n", 5, "non-linear"),
        ("(assert (>= (/ Y_0 0) 1))\n", 5, "division by zero"),
        ("(assert (>= (exp Y_0) 1))\n", 5, "unsupported term 'exp'"),
        ("(assert (>= (+ X_0 Y_0) 1))\n", 5, "mixing input and output"),
        ("(assert (not (>= Y_0 1)))\n", 5, "'not' is not supported"),
        ("(assert (xor (>= Y_0 1)))\n", 5, "unknown formula 'xor'"),
        ("(assert (>= Y_0 1e999))\n", 5, "out of the float64 range"),
        ("(assert (>= Y_0 nan))\n", 5, "unknown symbol 'nan'"),
        ("(assert (>= Y_0))\n", 5, "at least two terms"),
        ("(assert)\n", 5, "exactly one formula"),
        ("(assert (or))\n", 5, "always false"),
        ("(define-fun f () Real 1)\n", 5, "unknown command 'define-fun'"),
        ("(declare-const X_0 Real)\n", 5, "declared twice (first at line 1)"),
        ("(declare-const W Real)\n", 5, "unsupported variable name 'W'"),
        ("(declare-const X_1 Int)\n", 5, "only Real"),
        ("(declare-const X_2 Real)\n", 5, "X_1 is not declared"),
        ("stray\n", 5, "outside parentheses"),
        ("()\n", 5, "expected a command"),
        ("(assert 1)\n", 5, "expected a formula"),
    ],
)
def test_malformed_files_name_the_line(body: str, line: int, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        VNNLib(HEAD + BOUNDS + body, name="bad.vnnlib")
    assert info.value.line == line
    assert str(info.value).startswith(f"bad.vnnlib:{line}: ")


def test_unsupported_input_constraint_is_explained() -> None:
    text = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
    text += BOUNDS + "(assert (<= -1 X_1 1))\n(assert (<= (+ X_0 X_1) 1))\n(assert (>= Y_0 0))\n"
    with pytest.raises(SpecError, match="unsupported input constraint") as info:
        VNNLib(text)
    assert info.value.line == 7


@pytest.mark.parametrize(
    ("bounds", "missing"),
    [("(assert (>= X_0 0))\n", "X_0 has no upper bound"), ("", "X_0 has no lower bound")],
)
def test_missing_input_bounds_name_the_variable(bounds: str, missing: str) -> None:
    with pytest.raises(SpecError, match=missing) as info:
        VNNLib(HEAD + bounds + "(assert (>= Y_0 0))\n")
    assert info.value.line == 1  # where X_0 is declared


def test_a_disjunct_missing_a_bound_is_an_error() -> None:
    text = HEAD + "(assert (or (and (>= X_0 0) (<= X_0 1) (>= Y_0 0)) (and (>= X_0 0) (>= Y_0 1))))"
    with pytest.raises(SpecError, match="X_0 has no upper bound"):
        VNNLib(text)


def test_no_variables() -> None:
    with pytest.raises(SpecError, match="no output variables"):
        VNNLib("(declare-const X_0 Real)(assert (<= -1 X_0 1))")
    with pytest.raises(SpecError, match="no input variables"):
        VNNLib("(declare-const Y_0 Real)(assert (<= Y_0 1))")


def test_missing_file() -> None:
    with pytest.raises(SpecError, match="cannot read"):
        VNNLib("/nonexistent/prop.vnnlib")


def test_hostile_content_is_never_evaluated(tmp_path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        f"(assert (<= X_0 __import__('os').system('touch {marker}')))",
        f"(assert (<= X_0 (eval \"open('{marker}','w')\")))",
        f"(assert (<= X_0 exec(\"open('{marker}','w')\")))",
        "(assert (<= X_0 (__import__ os)))",
    ]
    for payload in payloads:
        with pytest.raises(SpecError):
            VNNLib(HEAD + BOUNDS + payload + "\n")
    assert not marker.exists()


def test_dnf_explosion_is_refused() -> None:
    disjunction = "(or " + " ".join(f"(>= Y_0 {i})" for i in range(10)) + ")"
    text = HEAD + BOUNDS + "".join(f"(assert {disjunction})\n" for i in range(6))
    with pytest.raises(SpecError, match="more than"):
        VNNLib(text)
