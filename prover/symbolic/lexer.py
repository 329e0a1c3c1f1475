"""Tokenizer of the claim language.

Only a fixed set of characters is accepted. Quotes (strings), a lone ``.`` (attribute
access), names starting with ``_`` (dunder names) and anything else outside the language
raise :class:`~prover.errors.SpecError` with the line and column; nothing is executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prover.errors import SpecError

#: Longest claim text accepted (characters).
MAX_LENGTH = 20_000

KEYWORDS = frozenset({"forall", "exists", "in", "and", "or", "not", "implies", "R"})

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|==|!=|<=|>=|\.\.|[-+*/^()\[\],:<>])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """A token: ``kind`` is "number", "name", "keyword", "op" or "end"."""

    kind: str
    text: str
    pos: int


def position(text: str, pos: int) -> tuple[int, int]:
    """Return the 1-based (line, column) of character offset ``pos`` in ``text``."""
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, column


def error(text: str, pos: int, message: str) -> SpecError:
    """Build a SpecError naming the line and column of ``pos``."""
    line, column = position(text, pos)
    exc = SpecError(f"column {column}: {message}", line=line, source="claim")
    exc.column = column
    exc.offset = pos
    return exc


def _reject_reason(text: str, pos: int) -> str:
    char = text[pos]
    if char in "'\"":
        return "strings are not part of the claim language"
    if char == ".":
        return "attribute access ('.') is not part of the claim language"
    if char in "=!" or char == "&" or char == "|":
        return f"unexpected character {char!r} (use ==, !=, and, or)"
    return f"unexpected character {char!r}"


#: Longest numeric literal and largest decimal exponent accepted (no huge exact numbers).
MAX_NUMBER_LENGTH = 60
MAX_EXPONENT = 300


def _check_number(text: str, pos: int, value: str) -> None:
    if len(value) > MAX_NUMBER_LENGTH:
        raise error(text, pos, f"numeric literal longer than {MAX_NUMBER_LENGTH} characters")
    mantissa, _, exponent = value.lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_EXPONENT:
        raise error(text, pos, f"exponent of {value!r} beyond +-{MAX_EXPONENT}")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an "end" token.

    Raises:
        SpecError: on any character or name outside the language, or too long input.
    """
    if not isinstance(text, str):
        raise SpecError(f"a claim must be a str, got {type(text).__name__}", source="claim")
    if len(text) > MAX_LENGTH:
        raise SpecError(f"claim too long ({len(text)} > {MAX_LENGTH} characters)", 1, "claim")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise error(text, pos, _reject_reason(text, pos))
        kind = match.lastgroup
        value = match.group()
        if kind == "name":
            if value.startswith("_") or "__" in value:
                raise error(text, pos, f"name {value!r}: underscore/dunder names are not allowed")
            if match.end() < len(text) and text[match.end()] in "'\"":
                raise error(text, match.end(), "strings are not part of the claim language")
            kind = "keyword" if value in KEYWORDS else "name"
        elif kind == "number":
            if match.end() < len(text) and text[match.end()] == ".":
                if not text.startswith("..", match.end()):
                    raise error(text, match.end(), "malformed number")
            _check_number(text, pos, value)
        if kind != "ws":
            tokens.append(Token(kind, value, pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens
