"""Rigorous evaluation of a claim at a point (to confirm a witness or counterexample).

* :class:`ExactBackend` (rational claims: + - * /, integer powers, relu, abs, max, min,
  leaky_relu) evaluates with :class:`fractions.Fraction`, exactly.
* :class:`IntervalBackend` evaluates with mpmath interval arithmetic (200 bits), so a
  comparison is decided only when the enclosures separate; it answers True/False/None.

A formula's value at a point is "defined and true": if any sub-term is undefined there
(division by zero, log of a non-positive number, sqrt of a negative number, a
non-integer power of a non-positive number) the formula is false at that point.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from mpmath import iv

from prover.symbolic.lower import Arithmetic, lower
from prover.symbolic.syntax import BoxDomain, Claim, RangeDomain


@dataclass(frozen=True)
class Variable:
    """A real quantified variable: ``dim`` None for a scalar; ``box`` (lo, hi) or None."""

    name: str
    dim: int | None
    box: tuple[Fraction, Fraction] | None

    @property
    def size(self) -> int:
        return 1 if self.dim is None else self.dim


def real_variables(claim: Claim) -> list[Variable]:
    """The real (non-index) quantified variables of ``claim``, outermost first."""
    out = []
    for binder in claim.binders:
        domain = binder.domain
        if isinstance(domain, RangeDomain):
            continue
        box = (domain.lo, domain.hi) if isinstance(domain, BoxDomain) else None
        out.append(Variable(binder.name, domain.dim, box))
    return out


def split(variables: list[Variable], flat) -> dict:
    """Map a flat sequence of values (or columns) onto the variables (tuples for vectors)."""
    values, k = {}, 0
    for var in variables:
        chunk = flat[k : k + var.size]
        values[var.name] = chunk[0] if var.dim is None else tuple(chunk)
        k += var.size
    return values


# ----------------------------------------------------------------------------- three-valued


def and3(parts) -> bool | None:
    parts = list(parts)
    if any(p is False for p in parts):
        return False
    return True if all(p is True for p in parts) else None


def or3(parts) -> bool | None:
    parts = list(parts)
    if any(p is True for p in parts):
        return True
    return False if all(p is False for p in parts) else None


def not3(p) -> bool | None:
    return None if p is None else not p


class _ThreeValued(Arithmetic):
    """Logic shared by the exact and interval backends; tracks definedness in ``defined``."""

    def __init__(self) -> None:
        self.defined: list[bool | None] = []

    def and_(self, parts):
        return and3(parts)

    def or_(self, parts):
        return or3(parts)

    def not_(self, p):
        return not3(p)

    def implies(self, p, q):
        return or3([not3(p), q])


class ExactBackend(_ThreeValued):
    """Exact rational evaluation (only for claims without transcendental functions)."""

    def const(self, value):
        return Fraction(value)

    def div(self, a, b):
        if b == 0:
            self.defined.append(False)
            return Fraction(0)
        return a / b

    ratio = div

    def pow(self, a, b, exponent):
        if exponent is None or exponent.denominator != 1:
            raise TypeError("exact evaluation needs an integer literal exponent")
        k = int(exponent)
        if k < 0 and a == 0:
            self.defined.append(False)
            return Fraction(0)
        return a**k

    def relu(self, a):
        return max(a, Fraction(0))

    def abs(self, a):
        return abs(a)

    def max2(self, a, b):
        return max(a, b)

    def min2(self, a, b):
        return min(a, b)

    def leaky(self, a, slope):
        return a if a >= 0 else slope * a

    def total(self, items):
        return sum(items, Fraction(0))

    def cmp(self, op, a, b):
        return {
            "==": a == b,
            "!=": a != b,
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
        }[op]


_WHOLE = iv.mpf(["-inf", "inf"])


def _iv(lo, hi):
    return iv.mpf([lo, hi])


class IntervalBackend(_ThreeValued):
    """Rigorous enclosures with mpmath's interval arithmetic (outward rounding)."""

    def __init__(self, prec: int = 200) -> None:
        super().__init__()
        self.prec = prec

    def const(self, value: Fraction):
        return iv.mpf(value.numerator) / iv.mpf(value.denominator)

    def ratio(self, a, b):
        if b.a > 0 or b.b < 0:
            return a / b
        return _WHOLE

    def div(self, a, b):
        if b.a == 0 and b.b == 0:
            self.defined.append(False)
            return _WHOLE
        if b.a <= 0 <= b.b:
            self.defined.append(None)
        return self.ratio(a, b)

    def _positive(self, a, strict: bool) -> bool:
        """Record whether ``a > 0`` (or ``>= 0``) holds; return whether it surely does."""
        if (a.a > 0) if strict else (a.a >= 0):
            return True
        self.defined.append(False if ((a.b <= 0) if strict else (a.b < 0)) else None)
        return False

    def exp(self, a):
        return iv.exp(a)

    def log(self, a):
        if not self._positive(a, strict=True):
            return _WHOLE
        return iv.log(a)

    def sqrt(self, a):
        if not self._positive(a, strict=False):
            return iv.sqrt(_iv(0, max(a.b, 0))) if a.b >= 0 else _WHOLE
        return iv.sqrt(a)

    def pow(self, a, b, exponent):
        if exponent is not None and exponent.denominator == 1:
            k = int(exponent)
            if k == 0:
                return iv.mpf(1)
            even = k % 2 == 0
            magnitude = abs(k)
            if even and a.a < 0 < a.b:
                top = max(-a.a, a.b) ** magnitude
                result = _iv(0, top.b)
            else:
                result = a**magnitude
            return result if k > 0 else self.div(iv.mpf(1), result)
        if not self._positive(a, strict=True):
            return _WHOLE
        return iv.exp(b * iv.log(a))

    def sigmoid(self, a):
        return iv.mpf(1) / (iv.mpf(1) + iv.exp(-a))

    def tanh(self, a):
        t = iv.exp(-2 * a)
        return (iv.mpf(1) - t) / (iv.mpf(1) + t)

    def relu(self, a):
        return _iv(max(a.a, 0), max(a.b, 0))

    def abs(self, a):
        if a.a >= 0:
            return a
        if a.b <= 0:
            return -a
        return _iv(0, max(-a.a, a.b))

    def max2(self, a, b):
        return _iv(max(a.a, b.a), max(a.b, b.b))

    def min2(self, a, b):
        return _iv(min(a.a, b.a), min(a.b, b.b))

    def leaky(self, a, slope):
        if a.a >= 0:
            return a
        if a.b < 0:
            return slope * a
        neg = slope * _iv(a.a, 0)
        return _iv(min(neg.a, 0), max(neg.b, a.b))

    def total(self, items):
        result = iv.mpf(0)
        for item in items:
            result = result + item
        return result

    def cmp(self, op, a, b):
        if op in (">", ">="):
            a, b, op = b, a, "<" if op == ">" else "<="
        if op == "<":
            return True if a.b < b.a else (False if a.a >= b.b else None)
        if op == "<=":
            return True if a.b <= b.a else (False if a.a > b.b else None)
        equal = a.a == a.b == b.a == b.b
        disjoint = a.b < b.a or b.b < a.a
        value = True if equal else (False if disjoint else None)
        return value if op == "==" else not3(value)


def evaluate3(claim: Claim, values: dict, exact: bool) -> bool | None:
    """Rigorous value (True/False/None) of the claim's matrix at one point.

    Args:
        claim: the claim.
        values: name -> float (scalar) or tuple of floats (vector).
        exact: evaluate with Fractions (rational claims) instead of intervals.
    """
    return evaluate_detail(claim, values, exact)[0]


def evaluate_detail(claim: Claim, values: dict, exact: bool) -> tuple[bool | None, bool]:
    """As :func:`evaluate3`, plus whether some sub-term is surely undefined there."""
    if exact:
        backend = ExactBackend()
        point = {k: _map_values(v, Fraction) for k, v in values.items()}
        body = lower(claim, backend, point)
        return and3([*backend.defined, body]), False in backend.defined
    backend = IntervalBackend()
    old = iv.prec
    iv.prec = backend.prec
    try:
        point = {k: _map_values(v, lambda t: iv.mpf(float(t))) for k, v in values.items()}
        body = lower(claim, backend, point)
    finally:
        iv.prec = old
    return and3([*backend.defined, body]), False in backend.defined


def _map_values(value, fn):
    return tuple(fn(v) for v in value) if isinstance(value, tuple) else fn(value)


def _inward(bound: Fraction, up: bool) -> float:
    """The float nearest ``bound`` on the inside of the box (``up``: round up)."""
    value = float(bound)
    if up and Fraction(value) < bound:
        value = float(np.nextafter(value, np.inf))
    if not up and Fraction(value) > bound:
        value = float(np.nextafter(value, -np.inf))
    return value


def bounds(variables):
    """Float bounds of the boxes, rounded inward (so clipped points stay inside)."""
    lo, hi = [], []
    for var in variables:
        if var.box is None:
            low, high = -np.inf, np.inf
        else:
            low, high = _inward(var.box[0], up=True), _inward(var.box[1], up=False)
        lo += [low] * var.size
        hi += [high] * var.size
    return np.array(lo), np.array(hi)


def inside(variables, point) -> bool:
    """Whether ``point`` (flat floats) lies in every variable's box, checked exactly."""
    k = 0
    for var in variables:
        for value in point[k : k + var.size]:
            if not np.isfinite(value):
                return False
            if var.box is not None and not var.box[0] <= Fraction(float(value)) <= var.box[1]:
                return False
        k += var.size
    return True


def verify(claim: Claim, point: np.ndarray, want: bool, exact: bool) -> bool:
    """Whether the matrix is rigorously ``want`` at ``point`` (float64, inside the boxes)."""
    variables = real_variables(claim)
    if not inside(variables, point):
        return False
    values = split(variables, [float(v) for v in point])
    return evaluate3(claim, values, exact) is want
