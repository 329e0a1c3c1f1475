"""One generic lowering of a typed claim formula into a backend (SymPy, Z3, numbers).

A backend is an object with one method per operation (``add``, ``exp``, ``cmp``...);
:func:`lower` walks the formula once and calls them. Scalars are backend values, vectors
are tuples of backend values (element-wise semantics, scalar broadcasting), formulas are
the backend's booleans. Index quantifiers (``forall i in 0..4``) are finite: they are
expanded here into ``and_`` / ``or_`` over the range.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from prover.symbolic.check import _children
from prover.symbolic.syntax import Binary, Binder, Call, Claim, Index, Num, RangeDomain, Unary, Var

_ARITH = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


def literal(node) -> Fraction | None:
    """The exact value of a constant expression of literals (``-2``, ``1/2``, ``2^3``)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Unary) and node.op == "-":
        inner = literal(node.operand)
        return None if inner is None else -inner
    if isinstance(node, Binary) and node.op in ("+", "-", "*", "/", "^"):
        a, b = literal(node.left), literal(node.right)
        if a is None or b is None:
            return None
        if node.op == "/":
            return None if b == 0 else a / b
        if node.op == "^":
            small = max(abs(a.numerator), a.denominator) < 2**64
            if b.denominator != 1 or abs(b) > 64 or not small or (a == 0 and b < 0):
                return None
            return a ** int(b)
        return {"+": a + b, "-": a - b, "*": a * b}[node.op]
    return None


def uses(node, names: tuple[str, ...]) -> bool:
    """Whether any function of ``names`` occurs in the formula; the name ``"pow"`` stands
    for a power whose exponent is not an integer literal of magnitude <= 64 (iterative)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Call):
            if current.fn in names:
                return True
            stack.extend(current.args)
        elif isinstance(current, Index):
            stack.extend((current.base, current.index))
        elif isinstance(current, Unary):
            stack.append(current.operand)
        elif isinstance(current, Binary):
            if current.op == "^" and "pow" in names:
                exponent = literal(current.right)
                if exponent is None or exponent.denominator != 1 or abs(exponent) > 64:
                    return True
            stack.extend((current.left, current.right))
    return False


class Arithmetic:
    """Ring operations every backend spells with Python's operators (``+ - *``, unary ``-``).

    ``ratio`` is the plain quotient, used by ``softmax`` where the denominator is a sum of
    exponentials; backends whose division needs care (definedness, exactness) override it.
    Backends inherit these and add ``const``, ``div``, ``pow``, ``exp``... themselves.
    """

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def neg(self, a):
        return -a

    def ratio(self, a, b):
        return a / b


def _map(fn, *values):
    """Apply ``fn`` element-wise with scalar broadcasting over tuples (vectors)."""
    length = next((len(v) for v in values if isinstance(v, tuple)), None)
    if length is None:
        return fn(*values)
    columns = [v if isinstance(v, tuple) else (v,) * length for v in values]
    return tuple(fn(*items) for items in zip(*columns, strict=True))


class Lowering:
    """Lower one claim's formula into ``backend`` under an assignment of its variables."""

    def __init__(self, backend: Any, values: dict[str, Any]) -> None:
        self.backend = backend
        self.values = dict(values)
        self.indices: dict[str, int] = {}
        self.memo: dict[tuple, Any] = {}
        self.free: dict[int, frozenset] = {}
        self.index_names: frozenset = frozenset()

    def formula(self, body, index_binders: tuple[Binder, ...] = ()):
        """Lower ``body`` under the finite index quantifiers ``index_binders``."""
        if not index_binders:
            return self.expr(body)
        first, rest = index_binders[0], index_binders[1:]
        domain: RangeDomain = first.domain
        parts = []
        for k in range(domain.lo, domain.hi + 1):
            self.indices[first.name] = k
            parts.append(self.formula(body, rest))
        del self.indices[first.name]
        return self.backend.and_(parts) if first.kind == "forall" else self.backend.or_(parts)

    def free_indices(self, node) -> frozenset:
        """Index variables occurring in ``node`` (memoised by node identity)."""
        key = id(node)
        if key not in self.free:
            if isinstance(node, Var):
                found = frozenset([node.name]) if node.name in self.index_names else frozenset()
            else:
                found = frozenset()
                for child in _children(node):
                    found |= self.free_indices(child)
            self.free[key] = found
        return self.free[key]

    def expr(self, node):
        """Lower one node; shared sub-formulas are lowered once per index assignment."""
        key = (id(node), tuple((n, self.indices[n]) for n in sorted(self.free_indices(node))))
        if key not in self.memo:
            self.memo[key] = self._expr(node)
        return self.memo[key]

    def _expr(self, node):
        b = self.backend
        if isinstance(node, Num):
            return b.const(node.value)
        if isinstance(node, Var):
            return self.values[node.name]
        if isinstance(node, Index):
            base = self.expr(node.base)
            idx = node.index
            k = int(idx.value) if isinstance(idx, Num) else self.indices[idx.name]
            return base[k]
        if isinstance(node, Unary):
            operand = self.expr(node.operand)
            return b.not_(operand) if node.op == "not" else _map(b.neg, operand)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Call):
            return self.call(node)
        raise TypeError(f"unknown node {type(node).__name__}")

    def binary(self, node: Binary):
        b = self.backend
        op = node.op
        if op in ("and", "or"):
            parts = [self.expr(node.left), self.expr(node.right)]
            return b.and_(parts) if op == "and" else b.or_(parts)
        if op == "implies":
            return b.implies(self.expr(node.left), self.expr(node.right))
        left, right = self.expr(node.left), self.expr(node.right)
        if op in _ARITH:
            return _map(getattr(b, _ARITH[op]), left, right)
        if op == "^":
            exponent = literal(node.right)
            return _map(lambda x: b.pow(x, right, exponent), left)
        if not (isinstance(left, tuple) or isinstance(right, tuple)):
            return b.cmp(op, left, right)
        pairs = _map(lambda x, y: (x, y), left, right)
        if op == "!=":
            return b.or_([b.cmp("!=", x, y) for x, y in pairs])
        return b.and_([b.cmp(op, x, y) for x, y in pairs])

    def call(self, node: Call):
        b = self.backend
        fn = node.fn
        args = [self.expr(arg) for arg in node.args]
        if fn in ("exp", "log", "sqrt", "relu", "sigmoid", "tanh", "abs"):
            return _map(getattr(b, fn), args[0])
        if fn == "leaky_relu":
            return _map(lambda x: b.leaky(x, args[1]), args[0])
        if fn == "sum":
            return b.total(list(args[0])) if isinstance(args[0], tuple) else args[0]
        if fn == "softmax":
            exps = [b.exp(v) for v in args[0]]
            denominator = b.total(exps)
            return tuple(b.ratio(e, denominator) for e in exps)
        if fn in ("max", "min"):
            items = list(args[0]) if len(args) == 1 and isinstance(args[0], tuple) else args
            combine = b.max2 if fn == "max" else b.min2
            result = items[0]
            for item in items[1:]:
                result = _map(combine, result, item)
            return result
        raise TypeError(f"unknown function {fn}")


def lower(claim: Claim, backend: Any, values: dict[str, Any]):
    """Lower the matrix of ``claim`` (its index quantifiers expanded) into ``backend``."""
    index_binders = tuple(b for b in claim.binders if isinstance(b.domain, RangeDomain))
    lowering = Lowering(backend, values)
    lowering.index_names = frozenset(b.name for b in index_binders)
    return lowering.formula(claim.body, index_binders)
