"""SymPy discharge of universally quantified identities and sign facts.

The matrix must be a conjunction of comparisons (vector comparisons are conjunctions).
For each comparison ``lhs OP rhs`` the difference is formed and

* ``==``: shown to be zero, first by a structural rewrite (terms over the same
  denominator are summed, ``S/S -> 1`` once ``S`` is shown non-zero), then, for small
  expressions only, by ``sympy.simplify``;
* ``< <= > >=`` and ``!=``: shown positive / non-negative / non-zero by SymPy's
  assumption system (e.g. ``exp(t) > 0`` for real ``t``, sums and products of positive
  terms are positive).

Every division, ``log``, ``sqrt`` and non-integer power in the claim adds an obligation
(denominator non-zero, argument positive / non-negative) that must be proved the same way,
so the identity is proved at every real point. Symbols are real (positive or non-negative
when the claim's box says so). Soundness rests on SymPy's simplification and assumption
queries being correct; no floating point is involved.
"""

from __future__ import annotations

import functools

import sympy

from prover.symbolic.lower import Arithmetic

#: Expressions larger than this (``count_ops``) are never handed to ``sympy.simplify``.
SIMPLIFY_LIMIT = 200


class Declined(Exception):
    """The formula is not of a form this engine handles."""


class SympyBackend(Arithmetic):
    """Lowers arithmetic to SymPy; formulas to ("cmp", op, a, b) / ("and", parts)."""

    def __init__(self) -> None:
        self.obligations: list[tuple[str, sympy.Expr]] = []

    def const(self, value):
        return sympy.Rational(value.numerator, value.denominator)

    def ratio(self, a, b):
        return sympy.Mul(a, sympy.Pow(b, -1))

    def div(self, a, b):
        self.obligations.append(("nonzero", b))
        return self.ratio(a, b)

    def pow(self, a, b, exponent):
        if exponent is not None and exponent.denominator == 1:
            if exponent < 0:
                self.obligations.append(("nonzero", a))
            return sympy.Pow(a, sympy.Integer(int(exponent)))
        self.obligations.append(("positive", a))
        return sympy.Pow(a, b)

    def exp(self, a):
        return sympy.exp(a)

    def log(self, a):
        self.obligations.append(("positive", a))
        return sympy.log(a)

    def sqrt(self, a):
        self.obligations.append(("nonnegative", a))
        return sympy.sqrt(a)

    def sigmoid(self, a):
        return 1 / (1 + sympy.exp(-a))

    def tanh(self, a):
        return sympy.tanh(a)

    def relu(self, a):
        return sympy.Max(0, a)

    def abs(self, a):
        return sympy.Abs(a)

    def max2(self, a, b):
        return sympy.Max(a, b)

    def min2(self, a, b):
        return sympy.Min(a, b)

    def leaky(self, a, slope):
        return sympy.Piecewise((a, a >= 0), (slope * a, True))

    def total(self, items):
        return sympy.Add(*items)

    def cmp(self, op, a, b):
        return ("cmp", op, a, b)

    def and_(self, parts):
        return ("and", tuple(parts))

    def or_(self, parts):
        raise Declined("'or' is left to Z3")

    def not_(self, p):
        raise Declined("'not' is left to Z3")

    def implies(self, p, q):
        raise Declined("'implies' is left to Z3")


@functools.lru_cache(maxsize=8192)
def _positive(expr: sympy.Expr) -> bool:
    """Cheap, sound positivity: sums and products of positive terms, powers of a positive
    base, ``exp`` of a real argument; otherwise SymPy's own ``is_positive``."""
    if expr.is_Add or expr.is_Mul:
        if all(_positive(arg) for arg in expr.args):
            return True
    elif expr.is_Pow:
        if _positive(expr.base) and expr.exp.is_extended_real:
            return True
    elif isinstance(expr, sympy.exp):
        if expr.args[0].is_extended_real:
            return True
    return expr.is_positive is True


def combine(expr: sympy.Expr) -> sympy.Expr:
    """Sum the terms of ``expr`` that share a denominator: ``a/S + b/S -> (a+b)/S``.

    A group whose numerator sum is structurally ``S`` (or ``-S``, or 0) becomes 1 (-1, 0);
    this needs ``S != 0``, which is checked with SymPy's assumptions (e.g. a sum of
    exponentials is positive) before the group is touched. Linear in the number of terms,
    so ``sum(softmax(x))`` over R^1000 reduces to 1 without expanding anything.
    """
    if not expr.is_Add:
        return expr
    groups: dict[tuple, list] = {}
    for term in expr.args:
        coeff, factors = term.as_coeff_mul()
        dens = tuple(f.base for f in factors if f.is_Pow and f.exp == -1)
        nums = [f for f in factors if not (f.is_Pow and f.exp == -1)]
        groups.setdefault(dens, []).append(sympy.Mul(coeff, *nums))
    out = []
    for dens, nums in groups.items():
        numerator = sympy.Add(*nums)
        if not dens:
            out.append(numerator)
            continue
        denominator = sympy.Mul(*dens)
        if not all(_positive(d) or d.is_nonzero for d in dens):
            out.extend(sympy.Mul(n, *(sympy.Pow(d, -1) for d in dens)) for n in nums)
        elif numerator == denominator:
            out.append(sympy.Integer(1))
        elif numerator == -denominator:
            out.append(sympy.Integer(-1))
        elif numerator == 0:
            continue
        else:
            out.append(sympy.Mul(numerator, sympy.Pow(denominator, -1)))
    return sympy.Add(*out)


def _small(expr) -> bool:
    return sympy.count_ops(expr, visual=False) <= SIMPLIFY_LIMIT


def _candidates(expr):
    """The structural rewrite of ``expr``, then (small only) simplified forms."""
    rewritten = combine(expr)
    yield rewritten
    if _small(rewritten):
        simple = sympy.simplify(rewritten)
        yield simple
        if simple.has(sympy.tanh, sympy.Max, sympy.Min, sympy.Abs, sympy.Piecewise):
            yield sympy.simplify(simple.rewrite(sympy.exp))


def shown(expr: sympy.Expr, kind: str) -> bool:
    """Whether SymPy proves ``expr`` zero / nonzero / positive / nonnegative for all reals."""
    for form in _candidates(expr):
        if kind == "zero" and (form == 0 or form.is_zero is True):
            return True
        if kind in ("positive", "nonnegative", "nonzero") and _positive(form):
            return True
        if kind == "nonzero" and form.is_nonzero is True:
            return True
        if kind == "nonnegative" and form.is_nonnegative is True:
            return True
    return False


_KIND = {"==": "zero", "!=": "nonzero", "<": "positive", "<=": "nonnegative"}


def atoms(formula) -> list[tuple[str, sympy.Expr, str]]:
    """Flatten an ``and`` tree into (kind, expression, text) obligations."""
    out, stack = [], [formula]
    while stack:
        node = stack.pop()
        if node[0] == "and":
            stack.extend(node[1])
            continue
        _, op, a, b = node
        if op in (">", ">="):
            a, b, op = b, a, "<" if op == ">" else "<="
        diff = (b - a) if op in ("<", "<=") else (a - b)
        out.append((_KIND[op], diff, (a, op, b)))
    return out


def _short(expr) -> str:
    if sympy.count_ops(expr, visual=False) > 60:
        return f"<expression with {len(expr.free_symbols)} symbols>"
    return str(expr)


def prove(formula, obligations) -> tuple[bool, str]:
    """Try to prove every comparison and definedness obligation; return (proved, detail)."""
    if isinstance(formula, bool):
        raise Declined("constant formula")
    for kind, expr in obligations:
        if not shown(expr, kind):
            return False, f"SymPy could not show {_short(expr)} is {kind} (definedness)"
    goals = atoms(formula)
    for kind, diff, (a, op, b) in goals:
        if not shown(diff, kind):
            text = f"{_short(a)} {op} {_short(b)}"
            return False, f"SymPy could not show {text} (difference not {kind})"
    return True, f"{len(goals)} comparison(s) and {len(obligations)} definedness fact(s) proved"
