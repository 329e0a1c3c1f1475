"""``claim(text)``: parse, then refute or prove with numbers, SymPy and Z3.

Order of work for a claim whose real quantifiers are all ``forall`` (dually ``exists``):

1. numeric search for a counterexample (a witness), each candidate re-evaluated
   rigorously (exact rationals, or 200-bit interval arithmetic); a confirmed one decides
   VIOLATED (HOLDS for ``exists``);
2. rational claims (no exp/log/sqrt/sigmoid/tanh/softmax): Z3, exact;
3. otherwise SymPy (``forall`` only), then Z3 with exp/log uninterpreted and true axioms;
4. otherwise UNKNOWN with the reasons collected.

Claims are about real-number semantics (not float64 evaluation). Solver errors,
timeouts and Z3 ``unknown`` never become a verdict.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import z3

from prover.result import Result, Verdict
from prover.symbolic import sympy_backend
from prover.symbolic.lower import lower, uses
from prover.symbolic.numeric import (
    Variable,
    evaluate3,
    evaluate_detail,
    real_variables,
    split,
    verify,
)
from prover.symbolic.parser import parse_claim
from prover.symbolic.search import search
from prover.symbolic.syntax import TRANSCENDENTAL, Claim, RangeDomain
from prover.symbolic.z3_backend import Unsupported, Z3Backend, to_float, to_fraction

log = logging.getLogger(__name__)

#: Most cases the finite index quantifiers may expand to.
MAX_CASES = 100_000

SYMPY = "real arithmetic (exact, symbolic): SymPy identity/sign proof over real symbols"
Z3_EXACT = (
    "real arithmetic (exact): Z3 decision procedure for nonlinear real arithmetic; "
    "relu/abs/max/min/leaky_relu encoded exactly as if-then-else"
)
Z3_AXIOMS = (
    "real arithmetic (exact): Z3 with exp/log as uninterpreted functions constrained only "
    "by true axioms: {}"
)
EXACT_WITNESS = "witness re-evaluated in exact rational arithmetic (real semantics)"
INTERVAL_WITNESS = (
    "witness re-evaluated with 200-bit mpmath interval arithmetic (outward rounding); "
    "the decisive comparisons separate rigorously"
)


def is_rational(claim: Claim) -> bool:
    """No transcendental function, sqrt or non-integer power: exact evaluation applies."""
    return not uses(claim.body, (*TRANSCENDENTAL, "sqrt", "pow"))


def _order_problem(claim: Claim) -> str | None:
    binders = claim.binders
    for p, binder in enumerate(binders):
        if isinstance(binder.domain, RangeDomain):
            later = [b for b in binders[p + 1 :] if not isinstance(b.domain, RangeDomain)]
            if any(b.kind != binder.kind for b in later):
                return f"index quantifier {binder.name!r} precedes a real one of the other kind"
    return None


def _witness(variables: list[Variable], flat) -> dict[str, np.ndarray]:
    values = split(variables, list(flat))
    return {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in values.items()}


def _describe(witness: dict[str, np.ndarray]) -> str:
    parts = []
    for name, value in witness.items():
        shown = np.array2string(value[:8], precision=6, separator=", ")
        more = f" ... ({value.size} values)" if value.size > 8 else ""
        parts.append(f"{name} = {shown}{more}")
    return ", ".join(parts)


class _Run:
    def __init__(self, claim: Claim, timeout: float) -> None:
        self.claim = claim
        self.start = time.monotonic()
        self.deadline = self.start + timeout
        self.variables = real_variables(claim)
        self.rational = is_rational(claim)
        self.reasons: list[str] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def result(self, verdict: Verdict, method: str, soundness: str, reason: str, **kw) -> Result:
        return Result(
            verdict=verdict,
            method=method,
            soundness=soundness,
            reason=reason,
            elapsed=time.monotonic() - self.start,
            **kw,
        )

    def decided_by_witness(
        self, kind: str, flat, method: str, note: str = "", soundness: str = ""
    ) -> Result:
        witness = _witness(self.variables, flat)
        soundness = soundness or (EXACT_WITNESS if self.rational else INTERVAL_WITNESS)
        stats = {"witness": witness}
        text = _describe(witness)
        if kind == "forall" and not note:
            values = split(self.variables, [float(v) for v in flat])
            if evaluate_detail(self.claim, values, self.rational)[1]:
                note = " (a term is undefined there: division by zero, log/sqrt/power domain)"
        if kind == "forall":
            counterexample = np.concatenate([w.ravel() for w in witness.values()])
            reason = f"counterexample {text}: the claim is false there{note}"
            return self.result(
                Verdict.VIOLATED,
                method,
                soundness,
                reason,
                counterexample=counterexample,
                stats=stats,
            )
        reason = f"witness {text}: the formula is true there{note}"
        return self.result(Verdict.HOLDS, method, soundness, reason, stats=stats)

    # -- engines ---------------------------------------------------------------------
    def numeric(self, kind: str) -> Result | None:
        want = kind == "exists"
        budget = min(1.0, max(0.05, 0.1 * self.remaining()))
        try:
            candidates = search(self.claim, want, time.monotonic() + budget)
        except (ArithmeticError, ValueError, OverflowError) as exc:
            self.reasons.append(f"numeric search failed: {exc}")
            return None
        for point in candidates:
            if verify(self.claim, point, want, self.rational):
                return self.decided_by_witness(kind, point, "numeric-witness")
        self.reasons.append(
            f"numeric search found no {'witness' if want else 'counterexample'}"
            f" ({len(candidates)} candidate(s) rejected by rigorous re-evaluation)"
        )
        return None

    def sympy(self) -> Result | None:
        import sympy

        values = {}
        for var in self.variables:
            flags = {"real": True}
            if var.box is not None and var.box[0] > 0:
                flags["positive"] = True
            elif var.box is not None and var.box[0] >= 0:
                flags["nonnegative"] = True
            if var.dim is None:
                values[var.name] = sympy.Symbol(var.name, **flags)
            else:
                values[var.name] = tuple(
                    sympy.Symbol(f"{var.name}_{k}", **flags) for k in range(var.dim)
                )
        backend = sympy_backend.SympyBackend()
        try:
            formula = lower(self.claim, backend, values)
            proved, detail = sympy_backend.prove(formula, backend.obligations)
        except sympy_backend.Declined as exc:
            self.reasons.append(f"SymPy: {exc}")
            return None
        except Exception as exc:  # a SymPy failure decides nothing
            log.debug("sympy failed", exc_info=True)
            self.reasons.append(f"SymPy failed: {type(exc).__name__}: {exc}")
            return None
        if not proved:
            self.reasons.append(detail)
            return None
        return self.result(Verdict.HOLDS, "sympy", SYMPY, detail)

    def z3(self, kind: str) -> Result | None:
        ctx = z3.Context()
        backend = Z3Backend(ctx)
        values, flat_vars, box = {}, [], []
        for var in self.variables:
            names = [var.name] if var.dim is None else [f"{var.name}[{k}]" for k in range(var.dim)]
            zs = [z3.Real(n, ctx) for n in names]
            flat_vars += zs
            values[var.name] = zs[0] if var.dim is None else tuple(zs)
            if var.box is not None:
                lo, hi = backend.const(var.box[0]), backend.const(var.box[1])
                box += [c for z in zs for c in (z >= lo, z <= hi)]
        try:
            body = lower(self.claim, backend, values)
        except Unsupported as exc:
            self.reasons.append(f"Z3: {exc}")
            return None
        matrix = z3.And(*backend.defined, body)
        axioms, names = backend.axioms()
        solver = z3.Solver(ctx=ctx)
        solver.set("timeout", max(100, int(1000 * self.remaining())))
        solver.add(*box, *backend.side, *axioms)
        solver.add(z3.Not(matrix) if kind == "forall" else matrix)
        try:
            answer = solver.check()
        except z3.Z3Exception as exc:
            self.reasons.append(f"Z3 error: {exc}")
            return None
        soundness = Z3_AXIOMS.format("; ".join(names)) if backend.uses_functions else Z3_EXACT
        stats = {"assumptions": names} if names else {}
        if answer == z3.unsat:
            if kind == "forall":
                return self.result(
                    Verdict.HOLDS, "z3", soundness, "Z3: the negation is unsatisfiable", stats=stats
                )
            return self.result(
                Verdict.VIOLATED,
                "z3",
                soundness,
                "no witness exists: Z3 shows the formula unsatisfiable over the domain",
                stats=stats,
            )
        if answer != z3.sat:
            self.reasons.append(f"Z3 answered {answer} ({solver.reason_unknown()})")
            return None
        return self.z3_model(kind, solver.model(), flat_vars, backend.uses_functions)

    def z3_model(self, kind: str, model, flat_vars, functions: bool) -> Result | None:
        want = kind == "exists"
        numerals = [model.eval(z, model_completion=True) for z in flat_vars]
        try:
            floats = np.array([to_float(v) for v in numerals], dtype=np.float64)
        except (ValueError, z3.Z3Exception) as exc:
            self.reasons.append(f"Z3 model not numeric: {exc}")
            return None
        if verify(self.claim, floats, want, self.rational):
            method = "z3+numeric-witness" if functions else "z3"
            return self.decided_by_witness(kind, floats, method)
        exact = [to_fraction(v) for v in numerals]
        if self.rational and all(v is not None for v in exact):
            point = split(self.variables, exact)
            if evaluate3(self.claim, point, exact=True) is want:
                note = "; exact witness " + ", ".join(f"{v}" for v in exact[:8]) + " (rounded)"
                result = self.decided_by_witness(kind, floats, "z3", note)
                result.stats["witness_exact"] = [str(v) for v in exact]
                return result
        if not functions:
            # Z3 decided satisfiability exactly (no uninterpreted functions): as trustworthy
            # as its unsat answers; the witness is an algebraic number, shown rounded.
            note = (
                "; Z3's exact model is "
                + ", ".join(str(v) for v in numerals[:8])
                + " (algebraic; the float64 rounding shown does not replay exactly)"
            )
            exact_model = Z3_EXACT + "; witness from Z3's exact model"
            result = self.decided_by_witness(kind, floats, "z3", note, exact_model)
            result.stats["witness_exact"] = [str(v) for v in numerals]
            return result
        else:
            self.reasons.append("Z3 model with uninterpreted exp/log is not a real witness")
        return None

    def z3_closed(self) -> Result | None:
        """Alternating quantifiers: hand Z3 the closed formula (rational claims only)."""
        if not self.rational:
            self.reasons.append("alternating quantifiers need a rational claim (Z3 only)")
            return None
        ctx = z3.Context()
        backend = Z3Backend(ctx)
        values, per_var = {}, {}
        for var in self.variables:
            names = [var.name] if var.dim is None else [f"{var.name}[{k}]" for k in range(var.dim)]
            zs = [z3.Real(n, ctx) for n in names]
            per_var[var.name] = zs
            values[var.name] = zs[0] if var.dim is None else tuple(zs)
        body = lower(self.claim, backend, values)
        if backend.side:
            self.reasons.append("alternating quantifiers with sqrt are not encoded")
            return None
        formula = z3.And(*backend.defined, body)
        binders = {b.name: b for b in self.claim.binders}
        for var in reversed(self.variables):
            zs = per_var[var.name]
            box = []
            if var.box is not None:
                lo, hi = backend.const(var.box[0]), backend.const(var.box[1])
                box = [c for z in zs for c in (z >= lo, z <= hi)]
            inside = z3.And(*box) if box else z3.BoolVal(True, ctx)
            if binders[var.name].kind == "forall":
                formula = z3.ForAll(zs, z3.Implies(inside, formula))
            else:
                formula = z3.Exists(zs, z3.And(inside, formula))
        solver = z3.Solver(ctx=ctx)
        solver.set("timeout", max(100, int(1000 * self.remaining())))
        solver.add(formula)
        try:
            answer = solver.check()
        except z3.Z3Exception as exc:
            self.reasons.append(f"Z3 error: {exc}")
            return None
        if answer == z3.sat:
            return self.result(Verdict.HOLDS, "z3", Z3_EXACT, "Z3: the closed formula is true")
        if answer == z3.unsat:
            return self.result(Verdict.VIOLATED, "z3", Z3_EXACT, "Z3: the closed formula is false")
        self.reasons.append(f"Z3 answered {answer} ({solver.reason_unknown()})")
        return None

    def ground(self) -> Result:
        value = evaluate3(self.claim, {}, exact=self.rational)
        method = "exact evaluation" if self.rational else "interval evaluation"
        soundness = EXACT_WITNESS if self.rational else INTERVAL_WITNESS
        if value is None:
            return self.result(Verdict.UNKNOWN, method, soundness, "interval evaluation undecided")
        verdict = Verdict.HOLDS if value else Verdict.VIOLATED
        return self.result(verdict, method, soundness, f"the closed formula evaluates to {value}")


def run_claim(claim: Claim, timeout: float) -> Result:
    """Decide an already parsed claim (see :func:`claim`)."""
    run = _Run(claim, timeout)
    cases = 1
    for binder in claim.binders:
        if isinstance(binder.domain, RangeDomain):
            cases *= binder.domain.hi - binder.domain.lo + 1
    if cases > MAX_CASES:
        reason = f"index quantifiers expand to {cases} cases (limit {MAX_CASES})"
        return run.result(Verdict.UNKNOWN, "", "", reason)
    problem = _order_problem(claim)
    if problem:
        return run.result(Verdict.UNKNOWN, "", "", f"unsupported quantifier order: {problem}")
    if not run.variables:
        return run.ground()
    kinds = {b.kind for b in claim.binders if not isinstance(b.domain, RangeDomain)}
    if len(kinds) == 2:
        steps = [run.z3_closed]
    else:
        kind = kinds.pop()
        steps = [lambda: run.numeric(kind)]
        if run.rational:
            steps.append(lambda: run.z3(kind))
        else:
            if kind == "forall":
                steps.append(run.sympy)
            steps.append(lambda: run.z3(kind))
    for step in steps:
        if run.remaining() <= 0:
            run.reasons.append("time budget exhausted")
            break
        outcome = step()
        if outcome is not None:
            return outcome
    reason = "; ".join(run.reasons) or "undecided"
    return run.result(Verdict.UNKNOWN, "", "", reason)


def claim(text: str, *, timeout: float = 30.0) -> Result:
    """Decide a claim written in the claim language.

    Args:
        text: e.g. ``"forall x in R^10: sum(softmax(x)) == 1"``.
        timeout: wall-clock budget in seconds (Z3 and the numeric search honour it;
            a SymPy simplification, once started on a small expression, runs to its end).

    Returns:
        A :class:`~prover.result.Result`: HOLDS (proof; for ``exists`` a verified witness in
        ``stats["witness"]``), VIOLATED (``forall``: a re-evaluated counterexample in
        ``counterexample`` and ``stats["witness"]``; ``exists``: proof that none exists)
        or UNKNOWN with the reasons. ``method`` names the engine, ``soundness`` the
        arithmetic the verdict is sound for.

    Semantics: real numbers (not float64). The formula under the quantifiers is true at a
    point when every sub-term is defined there (no division by zero, ``log`` of a positive
    number, ``sqrt`` of a non-negative one, non-integer powers of positive bases) and the
    formula evaluates to true; so ``forall x in R: x/x == 1`` is VIOLATED at ``x = 0``.
    Vector comparisons hold component-wise (``!=``: some component differs).

    Raises:
        SpecError: the text is malformed (with line and column); nothing is executed.
    """
    parsed = parse_claim(text)
    return run_claim(parsed, float(timeout))


__all__ = ["claim", "run_claim"]
