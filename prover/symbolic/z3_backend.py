"""Z3 discharge: exact real arithmetic, piecewise-linear functions as if-then-else.

Encoding (all over Z3 reals):

* ``relu, abs, max, min, leaky_relu``: exact ``If`` terms.
* ``sqrt(a)``: a fresh real ``r`` with ``a >= 0 -> (r >= 0 and r*r == a)``: exact.
* ``a ^ k`` for an integer literal ``k`` (|k| <= 64): repeated products (exact).
* ``exp`` and ``log``: uninterpreted functions ``E``/``L``; ``sigmoid(a) = 1/(1+E(-a))``,
  ``tanh(a) = (1-E(-2a))/(1+E(-2a))``, ``softmax`` via ``E``. Only true facts about the
  real functions are added, instantiated on the terms that occur: ``E(t) > 0``,
  ``E(t) >= 1 + t``, ``t == 0 -> E(t) == 1``, ``t < 0 -> E(t) < 1``,
  ``E(s) * E(t) == 1`` when ``s + t`` simplifies to 0, and strict monotonicity
  ``s < t -> E(s) < E(t)`` (pairs, when there are few terms); ``t > 0 -> L(t) <= t - 1``,
  ``t == 1 -> L(t) == 0``, and monotonicity of ``L`` on positive arguments.
  Every real model of the claim is a model of this theory, so ``unsat`` is a proof;
  ``sat`` gives only a candidate, re-evaluated elsewhere.

Definedness (denominator non-zero, log argument positive, sqrt argument non-negative) is
collected in ``defined`` and conjoined with the formula. Any answer other than sat/unsat
(``unknown``, timeout, solver exception) decides nothing.
"""

from __future__ import annotations

from fractions import Fraction

import z3

from prover.symbolic.lower import Arithmetic

#: Monotonicity pairs are instantiated only when a function has at most this many terms.
PAIR_LIMIT = 40
MAX_POWER = 64


class Unsupported(Exception):
    """The claim uses something this encoding does not express."""


class Z3Backend(Arithmetic):
    """Lowers a claim into Z3 terms; ``side`` holds definitions and axioms."""

    def __init__(self, ctx: z3.Context) -> None:
        self.ctx = ctx
        self.defined: list = []
        self.side: list = []
        self.exp_fn = z3.Function("E", z3.RealSort(ctx), z3.RealSort(ctx))
        self.log_fn = z3.Function("L", z3.RealSort(ctx), z3.RealSort(ctx))
        self.exp_args: list = []
        self.log_args: list = []
        self.fresh = 0
        self.zero = z3.RealVal(0, ctx)
        self.one = z3.RealVal(1, ctx)

    @property
    def uses_functions(self) -> bool:
        """Whether uninterpreted functions occur (then ``sat`` is only a candidate)."""
        return bool(self.exp_args or self.log_args)

    def const(self, value: Fraction):
        return z3.RealVal(f"{value.numerator}/{value.denominator}", self.ctx)

    def div(self, a, b):
        self.defined.append(b != 0)
        return a / b

    def pow(self, a, b, exponent):
        if exponent is None or exponent.denominator != 1 or abs(exponent) > MAX_POWER:
            raise Unsupported("Z3 encoding needs an integer literal exponent (|k| <= 64)")
        k = int(exponent)
        result = self.one
        for _ in range(abs(k)):
            result = result * a
        if k < 0:
            self.defined.append(a != 0)
            result = self.one / result
        return result

    def exp(self, a):
        self.exp_args.append(a)
        return self.exp_fn(a)

    def log(self, a):
        self.defined.append(a > 0)
        self.log_args.append(a)
        return self.log_fn(a)

    def sqrt(self, a):
        self.fresh += 1
        root = z3.Real(f"sqrt!{self.fresh}", self.ctx)
        self.defined.append(a >= 0)
        self.side.append(z3.Implies(a >= 0, z3.And(root >= 0, root * root == a)))
        return root

    def sigmoid(self, a):
        return self.one / (self.one + self.exp(-a))

    def tanh(self, a):
        t = self.exp(-2 * a)
        return (self.one - t) / (self.one + t)

    def relu(self, a):
        return z3.If(a > 0, a, self.zero)

    def abs(self, a):
        return z3.If(a >= 0, a, -a)

    def max2(self, a, b):
        return z3.If(a >= b, a, b)

    def min2(self, a, b):
        return z3.If(a <= b, a, b)

    def leaky(self, a, slope):
        return z3.If(a >= 0, a, slope * a)

    def total(self, items):
        return z3.Sum(list(items)) if items else self.zero

    def cmp(self, op, a, b):
        return {
            "==": lambda: a == b,
            "!=": lambda: a != b,
            "<": lambda: a < b,
            "<=": lambda: a <= b,
            ">": lambda: a > b,
            ">=": lambda: a >= b,
        }[op]()

    def and_(self, parts):
        return z3.And(*parts) if parts else z3.BoolVal(True, self.ctx)

    def or_(self, parts):
        return z3.Or(*parts) if parts else z3.BoolVal(False, self.ctx)

    def not_(self, p):
        return z3.Not(p)

    def implies(self, p, q):
        return z3.Implies(p, q)

    def axioms(self) -> tuple[list, list[str]]:
        """True facts about exp/log on the terms that occur, and their descriptions."""
        facts, names = [], []
        exps = _unique(self.exp_args)
        if exps:
            names += ["exp(t) > 0", "exp(t) >= 1 + t", "exp(0) = 1", "exp(t) < 1 for t < 0"]
            for t in exps:
                e = self.exp_fn(t)
                facts += [e > 0, e >= 1 + t, z3.Implies(t == 0, e == 1), z3.Implies(t < 0, e < 1)]
            if len(exps) <= PAIR_LIMIT:
                names += ["exp strictly increasing", "exp(s) exp(-s) = 1"]
                for i, s in enumerate(exps):
                    for t in exps[i + 1 :]:
                        es, et = self.exp_fn(s), self.exp_fn(t)
                        facts += [z3.Implies(s < t, es < et), z3.Implies(t < s, et < es)]
                        if z3.is_rational_value(z3.simplify(s + t)) and z3.simplify(s + t).eq(
                            self.zero
                        ):
                            facts.append(es * et == 1)
        logs = _unique(self.log_args)
        if logs:
            names += ["log(t) <= t - 1 (t > 0)", "log(1) = 0"]
            for t in logs:
                lt = self.log_fn(t)
                facts += [z3.Implies(t > 0, lt <= t - 1), z3.Implies(t == 1, lt == 0)]
            if len(logs) <= PAIR_LIMIT:
                names.append("log strictly increasing on t > 0")
                for i, s in enumerate(logs):
                    for t in logs[i + 1 :]:
                        ls, lt = self.log_fn(s), self.log_fn(t)
                        facts += [
                            z3.Implies(z3.And(s > 0, s < t), ls < lt),
                            z3.Implies(z3.And(t > 0, t < s), lt < ls),
                        ]
        return facts, names


def _unique(terms: list) -> list:
    seen, out = set(), []
    for term in terms:
        key = term.get_id()
        if key not in seen:
            seen.add(key)
            out.append(term)
    return out


def to_fraction(value) -> Fraction | None:
    """Exact value of a Z3 rational numeral, else None (algebraic numbers)."""
    if z3.is_rational_value(value):
        return Fraction(value.numerator_as_long(), value.denominator_as_long())
    return None


def to_float(value) -> float:
    """A float near a Z3 numeral (rational or algebraic)."""
    exact = to_fraction(value)
    if exact is not None:
        return float(exact)
    if z3.is_algebraic_value(value):
        return float(Fraction(value.approx(30).as_fraction()))
    raise ValueError(f"not a numeral: {value}")
