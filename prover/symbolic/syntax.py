"""Abstract syntax of the claim language: frozen dataclasses, built only by the parser.

Every node carries ``pos``, the 0-based character offset in the claim text where it starts,
so that later checks (types, shapes, index bounds) can report where the problem is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


@dataclass(frozen=True)
class Num:
    """A numeric literal, kept exact (``0.01`` is the rational 1/100)."""

    value: Fraction
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Var:
    """A bound variable (real, vector or index)."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Index:
    """``base[index]``: a component of a vector; ``index`` is a Num or an index Var."""

    base: object
    index: object
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    """``fn(args...)`` for a function of :data:`FUNCTIONS`."""

    fn: str
    args: tuple
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Unary:
    """Unary minus (``op == "-"``) or logical negation (``op == "not"``)."""

    op: str
    operand: object
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Binary:
    """Arithmetic ``+ - * / ^``, comparisons ``== != < <= > >=``, ``and or implies``."""

    op: str
    left: object
    right: object
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class RealDomain:
    """``R`` (``dim is None``, a scalar) or ``R^dim`` (a vector)."""

    dim: int | None


@dataclass(frozen=True)
class BoxDomain:
    """``[lo, hi]`` (scalar, ``dim is None``) or ``[lo, hi]^dim``."""

    lo: Fraction
    hi: Fraction
    dim: int | None


@dataclass(frozen=True)
class RangeDomain:
    """``lo..hi``: the integers lo, lo+1, ..., hi (index variables)."""

    lo: int
    hi: int


@dataclass(frozen=True)
class Binder:
    """One quantified variable: ``kind`` is "forall" or "exists"."""

    kind: str
    name: str
    domain: RealDomain | BoxDomain | RangeDomain
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Claim:
    """A parsed claim: a quantifier prefix (outermost first) and the formula under it."""

    binders: tuple[Binder, ...]
    body: object
    text: str = field(default="", compare=False, repr=False)


#: Element-wise functions of one argument.
ELEMENTWISE = ("exp", "log", "sqrt", "relu", "sigmoid", "tanh", "abs")
#: Every function name the language knows, with its allowed number of arguments.
FUNCTIONS: dict[str, tuple[int, int]] = {
    **{name: (1, 1) for name in ELEMENTWISE},
    "leaky_relu": (2, 2),
    "sum": (1, 1),
    "softmax": (1, 1),
    "max": (1, 64),
    "min": (1, 64),
}
#: Functions that are not piecewise-polynomial (need SymPy or uninterpreted functions).
TRANSCENDENTAL = ("exp", "log", "sigmoid", "tanh", "softmax")
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
