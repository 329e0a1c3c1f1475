"""VNN-LIB 1.0 property files: parsed into input boxes and unsafe output polytopes.

A VNN-LIB file declares input variables ``X_i`` (the model input flattened in C order)
and output variables ``Y_j`` (the flattened output), then asserts the *violation*: the
conjunction of all ``assert`` s describes the unsafe inputs/outputs. "unsat" (nothing
satisfies it) means the property holds.

The file is read by a tokenizer and an S-expression reader of our own; nothing is ever
evaluated as code. Supported grammar::

    (declare-const X_0 Real)            ; also Y_j; sort must be Real
    (assert FORMULA)
    FORMULA := (and FORMULA...) | (or FORMULA...) | (CMP TERM TERM...)
    CMP     := <= | >= | < | > | =       ; chains (<= a b c) mean a <= b and b <= c
    TERM    := NUMBER | X_i | Y_j | (+ TERM...) | (- TERM...) | (* TERM...) | (/ TERM NUMBER)

``(set-logic ...)``, ``(set-info ...)``, ``(check-sat)``, ``(get-model)`` and ``(exit)``
are accepted and ignored. Products must be linear (at most one non-constant factor).

Normal form: the conjunction of the asserts is expanded into disjunctive normal form, a
list of *disjuncts*, each a conjunction of comparisons. In each disjunct every comparison
must involve only inputs or only outputs; input comparisons must be bounds on a single
input (``X_3 <= 0.5``); output comparisons become the rows of a polytope ``C y <= d``.
Disjuncts with an empty input region (e.g. contradictory bounds) are dropped, and
disjuncts with the same input box are grouped into one :class:`Subproblem`.

Numbers: a numeral denotes its nearest float64 (as in the competition's tools and its
counterexample checker). Arithmetic on the numerals (constants moved across, products)
is exact (rationals); an input bound that is not a float64 is rounded outward, an output
row's right-hand side is rounded up, so the boxes and polytopes contain the exact sets.
Strict comparisons are kept: the polytopes and boxes are their closures (a sound
over-approximation for proofs), and :meth:`VNNLib.violated_at` checks a concrete pair
exactly, honouring ``<`` versus ``<=``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from itertools import product
from pathlib import Path

import numpy as np

from prover.errors import PropertyError, SpecError
from prover.spec.properties import Polytope, Property, Subproblem
from prover.spec.regions import Box

#: Largest number of disjuncts the DNF expansion may produce before giving up.
MAX_DISJUNCTS = 100_000

_TOKEN = re.compile(r"[()]|[^\s();]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_VARIABLE = re.compile(r"([XY])_(0|[1-9]\d*)\Z")
_IGNORED_COMMANDS = frozenset(
    {"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"}
)
_COMPARISONS = frozenset({"<=", ">=", "<", ">", "="})

# An S-expression node: (line, text) for an atom, (line, [children]) for a list.
_Node = tuple  # (int, str | list)
_Var = tuple  # ("X" | "Y", index)


@dataclass(frozen=True, eq=False)
class Comparison:
    """The comparison ``sum(coef * var) + const < 0`` (strict) or ``<= 0``.

    Attributes:
        coefs: ((("X" or "Y"), index), coefficient) pairs, coefficients non-zero and exact.
        const: the exact constant term.
        strict: whether the comparison is ``<`` rather than ``<=``.
        line: the line of the file it came from.
    """

    coefs: tuple[tuple[_Var, Fraction | int], ...]
    const: Fraction | int
    strict: bool
    line: int

    def holds(self, x: np.ndarray, y: np.ndarray) -> bool:
        """Whether the comparison holds at the concrete point, exactly (rationals)."""
        total = self.const
        for (kind, index), coef in self.coefs:
            value = float((x if kind == "X" else y)[index])
            if not math.isfinite(value):
                return False
            total += coef * Fraction(value)
        return total < 0 if self.strict else total <= 0


@dataclass(frozen=True, eq=False)
class Disjunct:
    """One disjunct of the normal form: an input box and an output polytope.

    Attributes:
        lower: lower bounds of the flattened input (closure of strict bounds).
        upper: upper bounds of the flattened input.
        polytope: the output polytope ``C y <= d`` (closure of strict rows; may have 0 rows).
        inputs: the exact input comparisons (bounds) of the disjunct.
        outputs: the exact output comparisons of the disjunct.
    """

    lower: np.ndarray
    upper: np.ndarray
    polytope: Polytope
    inputs: tuple[Comparison, ...]
    outputs: tuple[Comparison, ...]

    def holds(self, x: np.ndarray, y: np.ndarray) -> bool:
        """Whether ``(x, y)`` satisfies every comparison of the disjunct, exactly."""
        return all(c.holds(x, y) for c in self.inputs) and all(c.holds(x, y) for c in self.outputs)


class VNNLib(Property):
    """A VNN-LIB 1.0 property, normalised into input boxes and unsafe output polytopes.

    Args:
        source: a path to a ``.vnnlib`` file, or the text of one (any string containing
            a parenthesis is taken as text).
        name: what error messages call the source (defaults to the path or "<vnnlib>").

    Raises:
        SpecError: on a malformed or unsupported file, with the line number.

    Attributes:
        n_inputs: number of declared input variables ``X_i``.
        n_outputs: number of declared output variables ``Y_j``.
        disjuncts: the non-empty disjuncts of the normal form, in file order.
        source: the path or name of the text.
    """

    def __init__(self, source: str | os.PathLike[str], *, name: str | None = None) -> None:
        if isinstance(source, os.PathLike) or (
            isinstance(source, str)
            and ("(" not in source or ("\n" not in source and Path(source).is_file()))
        ):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise SpecError(f"cannot read VNN-LIB file: {exc}", source=str(path)) from None
            label = name or str(path)
        elif isinstance(source, str):
            text, label = source, name or "<vnnlib>"
        else:
            raise SpecError(f"expected a path or VNN-LIB text, got {type(source).__name__}")
        self.source = label
        self.n_inputs, self.n_outputs, self.disjuncts = _Parser(text, label).parse()

    # -- the Property interface ---------------------------------------------------------

    @property
    def boxes(self) -> tuple[Box, ...]:
        """The distinct input boxes (flat), in file order."""
        return tuple(box for box, _ in self._groups())

    def subproblems(self, input_shape: tuple[int, ...], n_outputs: int) -> list[Subproblem]:
        """One :class:`Subproblem` per distinct input box, boxes reshaped to ``input_shape``.

        Raises:
            PropertyError: when the declared variables do not match the model's sizes.
        """
        self._check_sizes(input_shape, n_outputs)
        return [Subproblem(box.to_box(tuple(input_shape)), polys) for box, polys in self._groups()]

    def unsafe_polytopes(self, n_outputs: int) -> tuple[Polytope, ...]:
        """All unsafe polytopes; only meaningful with a single input box.

        Raises:
            PropertyError: when the file has several input boxes, or sizes mismatch.
        """
        self._check_outputs(n_outputs)
        groups = self._groups()
        if len(groups) > 1:
            raise PropertyError(
                f"{self.source}: the property has {len(groups)} different input boxes; "
                "use subproblems() to get each box with its own polytopes"
            )
        return groups[0][1] if groups else ()

    def violated_at(self, x: np.ndarray, y: np.ndarray) -> bool:
        """Whether input ``x`` and output ``y`` satisfy some disjunct exactly.

        Both are flattened in C order. Strict comparisons are honoured and the check is
        exact (rational arithmetic on the float64 values); NaN or Inf never satisfies a
        comparison.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if x.size != self.n_inputs or y.size != self.n_outputs:
            raise PropertyError(
                f"{self.source}: expected {self.n_inputs} inputs and {self.n_outputs} outputs, "
                f"got {x.size} and {y.size}"
            )
        cache: dict[int, bool] = {}

        def check(comparison: Comparison) -> bool:
            key = id(comparison)
            if key not in cache:
                cache[key] = comparison.holds(x, y)
            return cache[key]

        return any(
            all(check(c) for c in d.inputs) and all(check(c) for c in d.outputs)
            for d in self.disjuncts
        )

    def violated_by(self, y: np.ndarray) -> bool:
        """Whether output ``y`` meets the output constraints of some disjunct, exactly.

        Only defined when every disjunct has the same input constraints (one input
        region), since otherwise the answer depends on the input: use :meth:`violated_at`.

        Raises:
            PropertyError: when the disjuncts have different input constraints.
        """
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        self._check_outputs(y.size)
        if not self.disjuncts:
            return False
        first = self.disjuncts[0].inputs
        if any(d.inputs is not first and d.inputs != first for d in self.disjuncts):
            raise PropertyError(
                f"{self.source}: the property's disjuncts constrain the input differently; "
                "whether an output violates it depends on the input: use violated_at(x, y)"
            )
        x = np.zeros(self.n_inputs)
        return any(all(c.holds(x, y) for c in d.outputs) for d in self.disjuncts)

    def describe(self) -> str:
        groups = self._groups()
        n_polys = sum(len(p) for _, p in groups)
        return (
            f"VNN-LIB {self.source}: {self.n_inputs} inputs, {self.n_outputs} outputs, "
            f"{len(groups)} input box(es), {n_polys} unsafe polytope(s)"
        )

    # -- helpers ------------------------------------------------------------------------

    def _groups(self) -> list[tuple[Box, tuple[Polytope, ...]]]:
        groups = getattr(self, "_cached_groups", None)
        if groups is None:
            keyed: dict[tuple[bytes, bytes], tuple[Box, list[Polytope]]] = {}
            for d in self.disjuncts:
                key = (d.lower.tobytes(), d.upper.tobytes())
                if key not in keyed:
                    keyed[key] = (Box(d.lower, d.upper), [])
                keyed[key][1].append(d.polytope)
            groups = [(box, tuple(polys)) for box, polys in keyed.values()]
            self._cached_groups = groups
        return groups

    def _check_outputs(self, n_outputs: int) -> None:
        if n_outputs != self.n_outputs:
            raise PropertyError(
                f"{self.source} declares {self.n_outputs} outputs (Y_0..Y_{self.n_outputs - 1}) "
                f"but the model has {n_outputs}"
            )

    def _check_sizes(self, input_shape: tuple[int, ...], n_outputs: int) -> None:
        size = int(np.prod(input_shape)) if len(input_shape) else 1
        if size != self.n_inputs:
            raise PropertyError(
                f"{self.source} declares {self.n_inputs} inputs but the model input has shape "
                f"{tuple(input_shape)} ({size} values)"
            )
        self._check_outputs(n_outputs)


# ---------------------------------------------------------------------------------------
# Reading


class _Parser:
    """Tokenizer, S-expression reader and normaliser for one file."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.numbers: dict[str, Fraction] = {}
        self.declared: dict[_Var, int] = {}

    def error(self, message: str, line: int | None) -> SpecError:
        return SpecError(message, line=line, source=self.source)

    # S-expressions ------------------------------------------------------------------

    def read(self) -> list[_Node]:
        top: list[_Node] = []
        stack: list[_Node] = []
        for number, text in enumerate(self.text.split("\n"), start=1):
            if ";" in text:
                text = text[: text.index(";")]
            for token in _TOKEN.findall(text):
                if token == "(":
                    node = (number, [])
                    if stack:
                        stack[-1][1].append(node)
                    stack.append(node)
                elif token == ")":
                    if not stack:
                        raise self.error("unbalanced parentheses: unexpected ')'", number)
                    node = stack.pop()
                    if not stack:
                        top.append(node)
                elif stack:
                    stack[-1][1].append((number, token))
                else:
                    raise self.error(f"unexpected {token!r} outside parentheses", number)
        if stack:
            raise self.error(
                f"unbalanced parentheses: '(' opened at line {stack[-1][0]} is never closed",
                stack[-1][0],
            )
        return top

    # Top level ----------------------------------------------------------------------

    def parse(self) -> tuple[int, int, tuple[Disjunct, ...]]:
        common: list[Comparison] = []
        choices: list[list[list[Comparison]]] = []
        declare_lines: dict[_Var, int] = {}
        for line, items in self.read():
            if not items or isinstance(items[0][1], list):
                raise self.error("expected a command such as (assert ...)", line)
            head = items[0][1]
            if head == "declare-const":
                self.declare(line, items, declare_lines)
            elif head == "assert":
                if len(items) != 2:
                    raise self.error("assert takes exactly one formula", line)
                dnf = self.formula(items[1])
                if len(dnf) == 1:
                    common.extend(dnf[0])
                else:
                    choices.append(dnf)
            elif head in _IGNORED_COMMANDS:
                continue
            else:
                raise self.error(f"unknown command {head!r}", line)
        n_inputs = self.count("X")
        n_outputs = self.count("Y")
        if n_outputs == 0:
            raise self.error("no output variables Y_j are declared", None)
        if n_inputs == 0:
            raise self.error("no input variables X_i are declared", None)
        self.check_size(math.prod(len(dnf) for dnf in choices), None)
        builder = _Builder(self, n_inputs, n_outputs, declare_lines, common)
        disjuncts = []
        for combination in product(*choices):
            extra = [c for conj in combination for c in conj]
            disjunct = builder.build(extra)
            if disjunct is not None:
                disjuncts.append(disjunct)
        return n_inputs, n_outputs, tuple(disjuncts)

    def declare(self, line: int, items: list[_Node], declare_lines: dict[_Var, int]) -> None:
        if len(items) != 3 or not all(isinstance(i[1], str) for i in items[1:]):
            raise self.error("expected (declare-const NAME Real)", line)
        name, sort = items[1][1], items[2][1]
        if sort != "Real":
            raise self.error(f"variable {name!r} has sort {sort!r}; only Real is supported", line)
        match = _VARIABLE.match(name)
        if match is None:
            raise self.error(
                f"unsupported variable name {name!r}: VNN-LIB names inputs X_i and outputs Y_j",
                line,
            )
        var = (match.group(1), int(match.group(2)))
        if var in self.declared:
            raise self.error(
                f"variable {name} is declared twice (first at line {self.declared[var]})", line
            )
        self.declared[var] = line
        declare_lines[var] = line

    def count(self, kind: str) -> int:
        indices = sorted(i for k, i in self.declared if k == kind)
        for expected, index in enumerate(indices):
            if index != expected:
                raise self.error(
                    f"variable {kind}_{expected} is not declared but {kind}_{index} is "
                    f"(line {self.declared[(kind, index)]}); indices must run from 0",
                    self.declared[(kind, index)],
                )
        return len(indices)

    def check_size(self, size: int, line: int | None) -> None:
        if size > MAX_DISJUNCTS:
            raise self.error(
                f"the disjunctive normal form has more than {MAX_DISJUNCTS} disjuncts", line
            )

    # Formulas ------------------------------------------------------------------------

    def formula(self, node: _Node) -> list[list[Comparison]]:
        """The DNF of a formula: a list of conjunctions (lists of comparisons)."""
        line, value = node
        if isinstance(value, str) or not value or not isinstance(value[0][1], str):
            raise self.error("expected a formula (and ...), (or ...) or a comparison", line)
        head, args = value[0][1], value[1:]
        if head == "and":
            if not args:
                return [[]]
            result: list[list[Comparison]] = [[]]
            for arg in args:
                dnf = self.formula(arg)
                self.check_size(len(result) * len(dnf), line)
                result = [a + b for a in result for b in dnf]
            return result
        if head == "or":
            if not args:
                raise self.error("(or) with no arguments is always false", line)
            result = []
            for arg in args:
                result.extend(self.formula(arg))
                self.check_size(len(result), line)
            return result
        if head in _COMPARISONS:
            return [self.comparison(line, head, args)]
        if head == "not":
            raise self.error("'not' is not supported in VNN-LIB 1.0 formulas", line)
        raise self.error(f"unknown formula {head!r}; expected and, or, <=, >=, <, >, =", line)

    def comparison(self, line: int, op: str, args: list[_Node]) -> list[Comparison]:
        if len(args) < 2:
            raise self.error(f"({op} ...) needs at least two terms", line)
        terms = [self.term(a) for a in args]
        result = []
        for left, right in zip(terms, terms[1:], strict=False):
            if op in ("<=", "<", "="):
                result.append(_difference(left, right, op == "<", line))
            if op in (">=", ">", "="):
                result.append(_difference(right, left, op == ">", line))
        return result

    def term(self, node: _Node) -> tuple[dict[_Var, Fraction], Fraction]:
        """A linear term: ({variable: coefficient}, constant), exact."""
        line, value = node
        if isinstance(value, str):
            if value in self.numbers:
                return {}, self.numbers[value]
            if _NUMBER.match(value):
                number = float(value)
                if not math.isfinite(number):
                    raise self.error(f"number {value} is out of the float64 range", line)
                self.numbers[value] = Fraction(number)
                return {}, self.numbers[value]
            match = _VARIABLE.match(value)
            if match is None:
                raise self.error(f"unknown symbol {value!r}", line)
            var = (match.group(1), int(match.group(2)))
            if var not in self.declared:
                raise self.error(f"variable {value} is used but not declared", line)
            return {var: 1}, 0
        if not value or not isinstance(value[0][1], str):
            raise self.error("expected a term", line)
        head, args = value[0][1], [self.term(a) for a in value[1:]]
        if not args:
            raise self.error(f"({head}) needs arguments", line)
        if head == "+":
            return _sum(args, [1] * len(args))
        if head == "-":
            if len(args) == 1:
                return _sum(args, [-1])
            return _sum(args, [1] + [-1] * (len(args) - 1))
        if head == "*":
            coefs, const = {}, Fraction(1)
            for arg_coefs, arg_const in args:
                if arg_coefs:
                    if coefs:
                        raise self.error("non-linear term: a product of variables", line)
                    coefs = {v: c * const for v, c in arg_coefs.items()}
                    const = arg_const * const
                else:
                    coefs = {v: c * arg_const for v, c in coefs.items()}
                    const = const * arg_const
            return {v: c for v, c in coefs.items() if c != 0}, const
        if head == "/":
            if len(args) != 2 or args[1][0]:
                raise self.error("non-linear term: division must be by a number", line)
            divisor = args[1][1]
            if divisor == 0:
                raise self.error("division by zero", line)
            return {v: c / divisor for v, c in args[0][0].items()}, args[0][1] / divisor
        raise self.error(f"unsupported term {head!r}; expected +, -, * or /", line)


def _sum(args: list[tuple[dict, Fraction]], signs: list[int]) -> tuple[dict, Fraction]:
    coefs: dict[_Var, Fraction] = {}
    const = Fraction(0)
    for (arg_coefs, arg_const), sign in zip(args, signs, strict=True):
        for var, coef in arg_coefs.items():
            coefs[var] = coefs.get(var, 0) + sign * coef
        const += sign * arg_const
    return {v: c for v, c in coefs.items() if c != 0}, const


def _difference(left: tuple, right: tuple, strict: bool, line: int) -> Comparison:
    """The comparison ``left - right < 0`` (strict) or ``<= 0``."""
    coefs = dict(left[0])
    for var, coef in right[0].items():
        coefs[var] = coefs.get(var, 0) - coef
    items = tuple(sorted((v, c) for v, c in coefs.items() if c != 0))
    const = -right[1] if not left[1] else left[1] - right[1] if right[1] else left[1]
    return Comparison(items, const, strict, line)


def _float_down(value: Fraction) -> float:
    result = float(value)
    return math.nextafter(result, -math.inf) if Fraction(result) > value else result


def _float_up(value: Fraction) -> float:
    result = float(value)
    return math.nextafter(result, math.inf) if Fraction(result) < value else result


class _Builder:
    """Turns conjunctions of comparisons into :class:`Disjunct` s (boxes and polytopes)."""

    def __init__(
        self,
        parser: _Parser,
        n_inputs: int,
        n_outputs: int,
        declare_lines: dict[_Var, int],
        common: list[Comparison],
    ) -> None:
        self.parser = parser
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.declare_lines = declare_lines
        self.base_inputs, self.base_outputs, self.base_empty = self.split(common)
        self.base_bounds = self.bounds(self.base_inputs)
        self.base_box: tuple[np.ndarray, np.ndarray] | None = None
        self.base_done = False

    def split(self, comparisons: list[Comparison]) -> tuple[list, list, bool]:
        """(input comparisons, output comparisons, whether a constant comparison is false)."""
        inputs, outputs, empty = [], [], False
        for c in comparisons:
            kinds = {var[0] for var, _ in c.coefs}
            if not kinds:
                empty = empty or not (c.const < 0 if c.strict else c.const <= 0)
            elif kinds == {"X"}:
                if len(c.coefs) != 1:
                    raise self.parser.error(
                        "unsupported input constraint: only bounds on one input variable "
                        "(such as X_3 <= 0.5) are supported",
                        c.line,
                    )
                inputs.append(c)
            elif kinds == {"Y"}:
                outputs.append(c)
            else:
                raise self.parser.error(
                    "unsupported constraint mixing input and output variables", c.line
                )
        return inputs, outputs, empty

    @staticmethod
    def bounds(comparisons: list[Comparison], start: dict[int, list] | None = None) -> dict:
        """{input index: [lower, lower strict, upper, upper strict]} (exact rationals).

        Tightens a copy of ``start`` when given; at equal values a strict bound wins.
        """
        result = {i: list(v) for i, v in (start or {}).items()}
        for c in comparisons:
            ((_, index), coef) = c.coefs[0]
            value = -c.const if coef == 1 else c.const if coef == -1 else -c.const / coef
            entry = result.setdefault(index, [None, False, None, False])
            if coef > 0:  # x <= value
                if entry[2] is None or value < entry[2] or (value == entry[2] and c.strict):
                    entry[2], entry[3] = value, c.strict
            elif entry[0] is None or value > entry[0] or (value == entry[0] and c.strict):
                entry[0], entry[1] = value, c.strict
        return result

    def build(self, extra: list[Comparison]) -> Disjunct | None:
        """The disjunct of the common comparisons and ``extra``; None when it is empty."""
        inputs, outputs, empty = self.split(extra)
        if empty or self.base_empty:
            return None
        if inputs:
            box = self.box(self.bounds(inputs, self.base_bounds))
        else:
            if not self.base_done:
                self.base_box, self.base_done = self.box(self.base_bounds), True
            box = self.base_box
        if box is None:
            return None  # empty input region: this disjunct cannot be violated
        all_outputs = self.base_outputs + outputs
        return Disjunct(
            box[0],
            box[1],
            self.polytope(all_outputs),
            tuple(self.base_inputs + inputs),
            tuple(all_outputs),
        )

    def box(self, bounds: dict[int, list]) -> tuple[np.ndarray, np.ndarray] | None:
        """Float64 (lower, upper) containing the exact bounds; None when the box is empty."""
        lower = np.empty(self.n_inputs)
        upper = np.empty(self.n_inputs)
        for index in range(self.n_inputs):
            entry = bounds.get(index)
            for side, position in (("lower", 0), ("upper", 2)):
                if entry is None or entry[position] is None:
                    raise self.parser.error(
                        f"input X_{index} has no {side} bound (every input needs a lower and an "
                        "upper bound)",
                        self.declare_lines.get(("X", index)),
                    )
            lo, lo_strict, hi, hi_strict = entry
            if lo > hi or (lo == hi and (lo_strict or hi_strict)):
                return None
            lower[index] = _float_down(lo)
            upper[index] = _float_up(hi)
        lower.setflags(write=False)
        upper.setflags(write=False)
        return lower, upper

    def polytope(self, comparisons: list[Comparison]) -> Polytope:
        """The closure ``C y <= d`` of the output comparisons (d rounded up)."""
        C = np.zeros((len(comparisons), self.n_outputs))
        d = np.empty(len(comparisons))
        for row, c in enumerate(comparisons):
            for (_, index), coef in c.coefs:
                value = float(coef)
                if Fraction(value) != coef:
                    raise self.parser.error(
                        f"coefficient {coef} of Y_{index} is not exactly a float64", c.line
                    )
                C[row, index] = value
            d[row] = _float_up(-c.const)
        return Polytope(C, d)
