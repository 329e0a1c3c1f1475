"""An independent reader of VNN-LIB property files (the subset the benchmarks use).

The subset and its meaning are in FORMAT.md, section 5. Each disjunct of the violation
becomes ``(lower, upper, rows)``: the input box and the unsafe output rows ``(c, d, strict)``
meaning ``c . y <= d`` (``<`` when strict), all numbers exact Fractions of the decimal
numerals (or of their nearest float64 when ``as_float``). The text is parsed, never executed.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from proofs.checker.encoding import Malformed

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_NUMERAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_VAR = re.compile(r"([XY])_(0|[1-9]\d*)\Z")
MAX_DISJUNCTS = 100_000
_IGNORED = {"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"}


def _parse_sexprs(text: str) -> list:
    stack: list[list] = [[]]
    for tok in _TOKEN.findall("\n".join(line.split(";", 1)[0] for line in text.splitlines())):
        if tok == "(":
            stack.append([])
        elif tok != ")":
            stack[-1].append(tok)
        elif len(stack) == 1:
            raise Malformed("spec: unbalanced ')'")
        else:
            stack[-2].append(stack.pop())
    if len(stack) != 1:
        raise Malformed("spec: unbalanced '('")
    return stack[0]


def _term(expr, declared: set[str], as_float: bool) -> dict:
    """A linear term as {variable or None (constant): coefficient}."""
    if isinstance(expr, str):
        if _VAR.match(expr):
            if expr not in declared:
                raise Malformed(f"spec: {expr} used before its declaration")
            return {expr: Fraction(1)}
        if not _NUMERAL.match(expr):
            raise Malformed(f"spec: {expr!r} is not a numeral")
        return {None: Fraction(float(expr)) if as_float else Fraction(expr)}
    if not expr or not isinstance(expr[0], str):
        raise Malformed("spec: malformed term")
    head, args = expr[0], [_term(a, declared, as_float) for a in expr[1:]]
    if head in ("+", "-") and args:  # (- a) is -a, (- a b c) is a - b - c
        sign = 1 if head == "+" else -1
        return _combine(args, [sign] if len(args) == 1 else [1] + [sign] * (len(args) - 1))
    if head == "*" and args:
        consts = [a.get(None, Fraction(0)) for a in args if set(a) <= {None}]
        terms = [a for a in args if not set(a) <= {None}]  # the non-constant factors
        if len(terms) > 1:
            raise Malformed("spec: nonlinear product")
        return _combine(terms or [{None: Fraction(1)}], [math.prod(consts, start=Fraction(1))])
    if head == "/" and len(args) == 2 and set(args[1]) <= {None} and args[1].get(None):
        return _combine([args[0]], [1 / args[1][None]])
    raise Malformed(f"spec: unsupported term operator {head!r}")


def _formula(expr, declared: set[str], as_float: bool) -> list[list[tuple]]:
    """DNF: a list of conjunctions, each a list of atoms (coeffs, bound, strict)."""
    if not isinstance(expr, list) or not expr or not isinstance(expr[0], str):
        raise Malformed("spec: malformed formula")
    head, args = expr[0], expr[1:]
    if head == "and":
        result: list[list[tuple]] = [[]]
        for arg in args:
            result = [a + b for a in result for b in _formula(arg, declared, as_float)]
            if len(result) > MAX_DISJUNCTS:
                raise Malformed("spec: too many disjuncts")
        return result
    if head == "or":
        return [conj for arg in args for conj in _formula(arg, declared, as_float)]
    if head in ("<=", ">=", "<", ">", "=") and len(args) >= 2:
        terms = [_term(a, declared, as_float) for a in args]
        atoms = []
        for left, right in zip(terms, terms[1:], strict=False):  # chains: a <= b <= c
            for lo, hi, op in ((left, right, "<"), (right, left, ">")):  # atoms lo - hi <= 0
                if head in (op, op + "=", "="):
                    diff = _combine([lo, hi], [1, -1])
                    const = diff.pop(None, Fraction(0))
                    atoms.append(({k: v for k, v in diff.items() if v != 0}, -const, head == op))
        return [atoms]
    raise Malformed(f"spec: unsupported formula operator {head!r}")


def _combine(terms: list[dict], weights: list) -> dict:
    out: dict = {}
    for term, w in zip(terms, weights, strict=False):
        for key, value in term.items():
            out[key] = out.get(key, Fraction(0)) + value * w
    return out


def parse_vnnlib(text: str, n_inputs: int, n_outputs: int, as_float: bool = False) -> list:
    """The violation's disjuncts (module doc; ``len(c) == n_outputs``); Malformed if unsupported."""
    declared: set[str] = set()
    conj: list[list[tuple]] = [[]]
    for cmd in _parse_sexprs(text):
        if not isinstance(cmd, list) or not cmd or not isinstance(cmd[0], str):
            raise Malformed("spec: expected a command")
        if cmd[0] == "declare-const":
            if len(cmd) != 3 or cmd[2] != "Real" or not _VAR.match(str(cmd[1])):
                raise Malformed(f"spec: unsupported declaration {cmd!r}"[:120])
            kind, index = _VAR.match(cmd[1]).groups()
            if int(index) >= (n_inputs if kind == "X" else n_outputs):
                raise Malformed(f"spec: {cmd[1]} does not exist in the model")
            declared.add(cmd[1])
        elif cmd[0] == "assert" and len(cmd) == 2:
            parts = _formula(cmd[1], declared, as_float)
            if len(parts) == 1:  # the common case: extend in place
                for atoms in conj:
                    atoms.extend(parts[0])
            else:
                conj = [a + b for a in conj for b in parts]
            if len(conj) > MAX_DISJUNCTS:
                raise Malformed("spec: too many disjuncts")
        elif cmd[0] not in _IGNORED:
            raise Malformed(f"spec: unsupported command {cmd[0]!r}")
    return [_disjunct(atoms, n_inputs, n_outputs) for atoms in conj]


def _disjunct(atoms: list[tuple], n_inputs: int, n_outputs: int) -> tuple:
    lower, upper, rows = [None] * n_inputs, [None] * n_inputs, []
    for coeffs, bound, strict in atoms:
        kinds = {_VAR.match(k).group(1) for k in coeffs}
        if kinds == {"X"}:
            if len(coeffs) != 1:
                raise Malformed("spec: input constraints must bound one variable each")
            ((name, coef),) = coeffs.items()
            i, value = int(name[2:]), bound / coef
            side, tighter = (upper, min) if coef > 0 else (lower, max)  # x <= value, x >= value
            side[i] = value if side[i] is None else tighter(side[i], value)
        elif kinds == {"Y"}:
            c = [Fraction(0)] * n_outputs
            for name, coef in coeffs.items():
                c[int(name[2:])] = coef
            rows.append((c, bound, strict))
        elif kinds:
            raise Malformed("spec: a constraint mixes inputs and outputs")
        elif not (0 < bound or (0 == bound and not strict)):
            lower = upper = None  # a false constant constraint: this disjunct is empty
            break
    if lower is not None and (None in lower or None in upper):
        raise Malformed("spec: every input must be bounded from both sides")
    return lower, upper, rows
