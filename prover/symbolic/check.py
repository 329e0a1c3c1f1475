"""Type and shape checking of a parsed claim.

Shapes: ``None`` is a real scalar, an ``int`` n is a vector of R^n, ``"bool"`` a formula.
Vector arithmetic is element-wise with scalar broadcasting; comparisons of vectors hold
when they hold component-wise (``!=`` when some component differs).
"""

from __future__ import annotations

from fractions import Fraction

from prover.errors import SpecError
from prover.symbolic.lexer import error
from prover.symbolic.syntax import (
    COMPARISONS,
    ELEMENTWISE,
    FUNCTIONS,
    Binary,
    Call,
    Claim,
    Index,
    Num,
    RangeDomain,
    Unary,
    Var,
)

#: Deepest formula tree accepted (long chains like 1+1+...+1 count too).
MAX_DEPTH = 200

BOOL = "bool"


def _children(node) -> tuple:
    if isinstance(node, Index):
        return (node.base, node.index)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    return ()


def tree_depth(node) -> int:
    """Depth of a formula tree, computed without recursion."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(current))
    return deepest


def _broadcast(text: str, node, a, b):
    if a is None:
        return b
    if b is None or a == b:
        return a
    raise error(text, node.pos, f"vector lengths differ: R^{a} and R^{b}")


class _Checker:
    def __init__(self, claim: Claim) -> None:
        self.text = claim.text
        self.env: dict[str, object] = {}
        for binder in claim.binders:
            if binder.name in self.env:
                raise error(self.text, binder.pos, f"variable {binder.name!r} bound twice")
            if binder.name in FUNCTIONS:
                raise error(self.text, binder.pos, f"{binder.name!r} is a function name")
            self.env[binder.name] = binder.domain

    def arith(self, node):
        shape = self.shape(node)
        if shape == BOOL:
            raise error(self.text, node.pos, "expected a number or vector, got a formula")
        return shape

    def boolean(self, node) -> str:
        if self.shape(node) != BOOL:
            raise error(self.text, node.pos, "expected a formula (a comparison), got a number")
        return BOOL

    def shape(self, node):
        if isinstance(node, Num):
            return None
        if isinstance(node, Var):
            domain = self.env.get(node.name)
            if domain is None:
                raise error(self.text, node.pos, f"unknown name {node.name!r} (not bound)")
            if isinstance(domain, RangeDomain):
                raise error(self.text, node.pos, f"index {node.name!r} only allowed inside [...]")
            return domain.dim
        if isinstance(node, Index):
            return self.index(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Unary):
            return self.boolean(node.operand) if node.op == "not" else self.arith(node.operand)
        if isinstance(node, Binary):
            if node.op in ("and", "or", "implies"):
                self.boolean(node.left)
                return self.boolean(node.right)
            left, right = self.arith(node.left), self.arith(node.right)
            if node.op == "^" and right is not None:
                raise error(self.text, node.pos, "the exponent must be a scalar")
            shape = _broadcast(self.text, node, left, right)
            return BOOL if node.op in COMPARISONS else shape
        raise error(self.text, 0, f"internal: unknown node {type(node).__name__}")

    def index(self, node: Index) -> None:
        dim = self.arith(node.base)
        if dim is None:
            raise error(self.text, node.pos, "indexing a scalar")
        idx = node.index
        if isinstance(idx, Num):
            value = idx.value
            if value.denominator != 1 or not 0 <= value < dim:
                raise error(self.text, idx.pos, f"index {value} out of range 0..{dim - 1}")
            return None
        if isinstance(idx, Var) and isinstance(self.env.get(idx.name), RangeDomain):
            rng = self.env[idx.name]
            if rng.lo < 0 or rng.hi >= dim:
                raise error(
                    self.text,
                    idx.pos,
                    f"index {idx.name} in {rng.lo}..{rng.hi} exceeds 0..{dim - 1}",
                )
            return None
        raise error(self.text, idx.pos, "an index must be an integer literal or an index variable")

    def call(self, node: Call):
        fn, args = node.fn, node.args
        if fn in ELEMENTWISE:
            return self.arith(args[0])
        if fn == "leaky_relu":
            if self.arith(args[1]) is not None:
                raise error(self.text, args[1].pos, "leaky_relu's slope must be a scalar")
            return self.arith(args[0])
        if fn == "sum":
            self.arith(args[0])
            return None
        if fn == "softmax":
            dim = self.arith(args[0])
            if dim is None:
                raise error(self.text, node.pos, "softmax takes a vector")
            return dim
        if fn in ("max", "min"):
            shapes = [self.arith(arg) for arg in args]
            if len(args) == 1:
                return None
            shape = None
            for arg, other in zip(args, shapes, strict=True):
                shape = _broadcast(self.text, arg, shape, other)
            return shape
        raise error(self.text, node.pos, f"unknown function {fn!r}")


def check_claim(claim: Claim) -> None:
    """Check that ``claim`` is a well-typed formula.

    Raises:
        SpecError: naming the line/column of the offending part.
    """
    if tree_depth(claim.body) > MAX_DEPTH:
        raise SpecError(f"claim nested too deeply (depth > {MAX_DEPTH})", 1, "claim")
    checker = _Checker(claim)
    checker.boolean(claim.body)
    for binder in claim.binders:
        domain = binder.domain
        if hasattr(domain, "lo") and isinstance(domain.lo, Fraction) and domain.lo > domain.hi:
            raise error(claim.text, binder.pos, "empty box")
