"""Recursive-descent parser of the claim language (no eval, no sympify, no Python ast).

Grammar (quantifiers only in front)::

    claim    := quant | expr
    quant    := ("forall" | "exists") group ("," group)* ":" claim
    group    := NAME ("," NAME)* "in" domain
    domain   := "R" ["^" INT] | "[" signed "," signed "]" ["^" INT] | intexpr ".." intexpr
    expr     := precedence climbing over: implies < or < and < not < comparisons
                < + - < * / < unary - < ^ ** (right-associative) < postfix [index]
    atom     := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Then :func:`prover.symbolic.check.check_claim` types the formula (scalars, vectors,
booleans), so a returned :class:`Claim` is well formed.
"""

from __future__ import annotations

from fractions import Fraction

from prover.symbolic.lexer import Token, error, tokenize
from prover.symbolic.syntax import (
    COMPARISONS,
    FUNCTIONS,
    Binary,
    Binder,
    BoxDomain,
    Call,
    Claim,
    Index,
    Num,
    RangeDomain,
    RealDomain,
    Unary,
    Var,
)

#: Deepest nesting of parentheses / prefix operators the parser follows.
MAX_NESTING = 100
#: Largest vector dimension and index range accepted.
MAX_DIM = 10_000

_BINARY = {
    "implies": (1, "right"),
    "or": (2, "left"),
    "and": (3, "left"),
    **{op: (5, "none") for op in COMPARISONS},
    "+": (6, "left"),
    "-": (6, "left"),
    "*": (7, "left"),
    "/": (7, "left"),
    "^": (9, "right"),
    "**": (9, "right"),
}
_NOT_PREC = 4
_NEG_PREC = 8


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = tokenize(text)
        self.i = 0
        self.nesting = 0

    # -- helpers -----------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def fail(self, message: str, token: Token | None = None):
        token = token or self.tok
        found = "end of text" if token.kind == "end" else repr(token.text)
        return error(self.text, token.pos, f"{message} (found {found})")

    def expect(self, text: str) -> Token:
        if self.tok.text != text or self.tok.kind not in ("op", "keyword"):
            raise self.fail(f"expected {text!r}")
        return self.advance()

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.fail(f"claim nested too deeply (more than {MAX_NESTING} levels)")

    # -- claim and binders ---------------------------------------------------------------
    def claim(self) -> Claim:
        binders: list[Binder] = []
        while self.tok.kind == "keyword" and self.tok.text in ("forall", "exists"):
            kind = self.advance().text
            binders.extend(self.group(kind))
            while self.tok.text == "," and self.tok.kind == "op":
                self.advance()
                binders.extend(self.group(kind))
            self.expect(":")
        body = self.expr(0)
        if self.tok.kind != "end":
            if self.tok.text in ("forall", "exists"):
                raise self.fail("quantifiers are only allowed in front of the claim")
            raise self.fail("unexpected token")
        return Claim(tuple(binders), body, self.text)

    def group(self, kind: str) -> list[Binder]:
        names: list[Token] = [self.name()]
        while self.tok.text == ",":
            self.advance()
            names.append(self.name())
        self.expect("in")
        domain = self.domain()
        return [Binder(kind, tok.text, domain, tok.pos) for tok in names]

    def name(self) -> Token:
        if self.tok.kind != "name":
            raise self.fail("expected a variable name")
        return self.advance()

    def domain(self):
        if self.tok.kind == "keyword" and self.tok.text == "R":
            self.advance()
            return RealDomain(self.power_dim())
        if self.tok.text == "[":
            self.advance()
            lo = self.signed()
            self.expect(",")
            hi = self.signed()
            self.expect("]")
            if lo > hi:
                raise self.fail(f"empty box [{lo}, {hi}]")
            return BoxDomain(lo, hi, self.power_dim())
        if self.tok.kind == "number" or self.tok.text == "-":
            lo = self.int_expr()
            self.expect("..")
            hi = self.int_expr()
            if hi < lo:
                raise self.fail(f"empty index range {lo}..{hi}")
            if hi - lo >= MAX_DIM:
                raise self.fail(f"index range longer than {MAX_DIM}")
            return RangeDomain(lo, hi)
        raise self.fail("expected a domain: R, R^n, [lo, hi], [lo, hi]^n or lo..hi")

    def power_dim(self) -> int | None:
        if self.tok.text not in ("^", "**"):
            return None
        self.advance()
        token = self.tok
        if token.kind != "number" or not token.text.isdigit():
            raise self.fail("expected a positive integer dimension")
        self.advance()
        dim = int(token.text)
        if not 1 <= dim <= MAX_DIM:
            raise self.fail(f"dimension must be between 1 and {MAX_DIM}", token)
        return dim

    def signed(self) -> Fraction:
        sign = 1
        if self.tok.text in ("-", "+"):
            sign = -1 if self.advance().text == "-" else 1
        if self.tok.kind != "number":
            raise self.fail("expected a number")
        return sign * Fraction(self.advance().text)

    def int_expr(self) -> int:
        total = 0
        sign = 1
        if self.tok.text == "-":
            self.advance()
            sign = -1
        while True:
            token = self.tok
            if token.kind != "number" or not token.text.isdigit():
                raise self.fail("expected an integer")
            self.advance()
            total += sign * int(token.text)
            if self.tok.text in ("+", "-"):
                sign = 1 if self.advance().text == "+" else -1
                continue
            return total

    # -- expressions -------------------------------------------------------------------------
    def expr(self, min_prec: int):
        self.enter()
        left = self.prefix()
        while True:
            token = self.tok
            if token.kind not in ("op", "keyword") or token.text not in _BINARY:
                break
            prec, assoc = _BINARY[token.text]
            if prec < min_prec:
                break
            self.advance()
            right = self.expr(prec if assoc == "right" else prec + 1)
            op = "^" if token.text == "**" else token.text
            left = Binary(op, left, right, token.pos)
            if assoc == "none" and self.tok.text in COMPARISONS:
                raise self.fail("chained comparisons are not allowed; use 'and'")
        self.nesting -= 1
        return left

    def prefix(self):
        token = self.tok
        if token.kind == "keyword" and token.text == "not":
            self.advance()
            return Unary("not", self.expr(_NOT_PREC), token.pos)
        if token.kind == "op" and token.text in ("-", "+"):
            self.advance()
            operand = self.expr(_NEG_PREC)
            return operand if token.text == "+" else Unary("-", operand, token.pos)
        return self.postfix()

    def postfix(self):
        node = self.atom()
        while self.tok.text == "[" and self.tok.kind == "op":
            token = self.advance()
            index = self.expr(0)
            self.expect("]")
            node = Index(node, index, token.pos)
        return node

    def atom(self):
        token = self.tok
        if token.kind == "number":
            self.advance()
            return Num(Fraction(token.text), token.pos)
        if token.kind == "name":
            self.advance()
            if self.tok.text == "(" and self.tok.kind == "op":
                return self.call(token)
            return Var(token.text, token.pos)
        if token.text == "(" and token.kind == "op":
            self.advance()
            node = self.expr(0)
            self.expect(")")
            return node
        if token.text in ("forall", "exists"):
            raise self.fail("quantifiers are only allowed in front of the claim")
        raise self.fail("expected a number, a variable, a function call or '('")

    def call(self, name: Token) -> Call:
        if name.text not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise error(self.text, name.pos, f"unknown function {name.text!r}; known: {known}")
        self.expect("(")
        args = [self.expr(0)]
        while self.tok.text == ",":
            self.advance()
            args.append(self.expr(0))
        self.expect(")")
        low, high = FUNCTIONS[name.text]
        if not low <= len(args) <= high:
            raise error(
                self.text, name.pos, f"{name.text} takes {low}..{high} arguments, got {len(args)}"
            )
        return Call(name.text, tuple(args), name.pos)


def parse_claim(text: str) -> Claim:
    """Parse and type-check a claim.

    Args:
        text: e.g. ``"forall x in R^10: sum(softmax(x)) == 1"``.

    Returns:
        The :class:`Claim` (quantifier prefix and typed formula).

    Raises:
        SpecError: malformed or ill-typed text, with line and column; nothing is executed.
    """
    from prover.symbolic.check import check_claim

    claim = _Parser(text).claim()
    check_claim(claim)
    return claim
