"""What every lemma module shares: the result type and the two machine provers.

* :func:`z3_valid` proves a quantifier-free formula over the reals valid by showing its
  negation unsatisfiable with Z3 (symbolic parameters such as ``l < 0 < u`` are free
  reals, i.e. universally quantified, never sampled).
* :func:`derivative_sign` proves the sign of a derivative of ``sigmoid``/``tanh``/... on a
  half-line: SymPy differentiates exactly, the substitution ``t = exp(-x)`` (so ``x <= 0``
  iff ``t >= 1``, ``x >= 0`` iff ``0 < t <= 1``, as ``exp`` is increasing with
  ``exp(0) = 1``) turns it into a rational function of ``t``, and Z3 proves the sign of
  numerator times denominator over the ``t`` region.

Calculus facts used to go from derivative signs to inequalities are stated in each
lemma's ``ASSUMES`` (standard theorems, not machine-checked here).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
import z3

#: Per-query Z3 budget (milliseconds).
TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class LemmaResult:
    """Outcome of one lemma proof.

    Attributes:
        name: the lemma name (key of ``proofs.lemmas.LEMMAS``).
        holds: True only when every machine check succeeded.
        engine: which solvers ran ("z3", "sympy+z3", ...).
        detail: what was proved, or which check failed and why.
        assumptions: standard facts used but not machine-checked.
    """

    name: str
    holds: bool
    engine: str
    detail: str
    assumptions: tuple[str, ...] = ()


def z3_valid(hypotheses, goal, timeout_ms: int = TIMEOUT_MS) -> tuple[bool, str]:
    """Whether ``hypotheses -> goal`` is valid over the reals (Z3: negation unsat)."""
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*hypotheses)
    solver.add(z3.Not(goal))
    try:
        answer = solver.check()
    except z3.Z3Exception as exc:  # never a proof
        return False, f"Z3 error: {exc}"
    if answer == z3.unsat:
        return True, "Z3: negation unsatisfiable"
    if answer == z3.sat:
        return False, f"Z3 counterexample: {solver.model()}"
    return False, f"Z3 unknown: {solver.reason_unknown()}"


def run_checks(name: str, engine: str, checks, assumptions=()) -> LemmaResult:
    """Run ``(description, thunk)`` checks in order; hold only if all return True."""
    done = []
    for description, thunk in checks:
        ok, why = thunk()
        if not ok:
            return LemmaResult(name, False, engine, f"FAILED: {description}: {why}", assumptions)
        done.append(description)
    return LemmaResult(name, True, engine, "proved: " + "; ".join(done), tuple(assumptions))


def relu(x):
    """Z3 term of relu."""
    return z3.If(x > 0, x, 0)


def leaky(x, alpha):
    """Z3 term of leaky relu with slope ``alpha`` below 0."""
    return z3.If(x >= 0, x, alpha * x)


# ---------------------------------------------------------------------------- calculus

X = sympy.Symbol("x", real=True)
T = sympy.Symbol("t", positive=True)


def sympy_zero(expr: sympy.Expr) -> tuple[bool, str]:
    """Whether SymPy simplifies ``expr`` (rewritten in exponentials) to exactly 0."""
    for form in (expr, expr.rewrite(sympy.exp)):
        if sympy.simplify(form) == 0:
            return True, "SymPy: simplifies to 0"
    return False, f"SymPy: {sympy.simplify(expr)} is not 0"


def sympy_sign(expr: sympy.Expr, kind: str) -> tuple[bool, str]:
    """Whether SymPy's assumptions show ``expr`` positive / nonnegative / negative."""
    query = {
        "positive": expr.is_positive,
        "nonnegative": expr.is_nonnegative,
        "negative": expr.is_negative,
        "nonpositive": expr.is_nonpositive,
    }[kind]
    if query is True:
        return True, f"SymPy: {expr} is {kind}"
    return False, f"SymPy cannot show {expr} is {kind}"


def _poly_to_z3(poly: sympy.Expr, t: z3.ArithRef):
    coeffs = sympy.Poly(poly, T).all_coeffs()
    term = z3.RealVal(0)
    for c in coeffs:
        c = sympy.Rational(c)
        term = term * t + z3.RealVal(f"{c.p}/{c.q}")
    return term


def derivative_sign(f: sympy.Expr, order: int, region: str, sign: str) -> tuple[bool, str]:
    """Prove ``d^order f / dx^order`` has ``sign`` (">=0" or "<=0") on ``region``.

    Args:
        f: a SymPy expression in :data:`X` built from exp (sigmoid, tanh...).
        order: derivative order.
        region: "x<=0" or "x>=0".
        sign: ">=0" or "<=0".
    """
    deriv = sympy.diff(f, X, order).rewrite(sympy.exp)
    in_t = sympy.together(sympy.simplify(deriv.subs(X, -sympy.log(T))))
    if in_t.has(sympy.exp, sympy.log) or not in_t.is_rational_function(T):
        return False, f"not a rational function of t = exp(-x): {in_t}"
    num, den = sympy.fraction(in_t)
    t = z3.Real("t")
    n, d = _poly_to_z3(sympy.expand(num), t), _poly_to_z3(sympy.expand(den), t)
    hyp = [t >= 1] if region == "x<=0" else [t > 0, t <= 1]
    product = n * d
    goal = z3.And(d != 0, product >= 0 if sign == ">=0" else product <= 0)
    ok, why = z3_valid(hyp, goal)
    return ok, f"f^({order}) = {in_t} with t = exp(-x); {why}"
