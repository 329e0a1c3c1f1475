"""Check a whole certificate: bindings, statement, evidence. See proofs/FORMAT.md."""

from __future__ import annotations

import functools
import json
import operator
import os
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from proofs.checker import encoding as enc
from proofs.checker import rules
from proofs.checker.encoding import Invalid, Malformed, parse_array, sha256
from proofs.checker.encoding import field as get
from proofs.checker.model import Network, network_hash, read_model
from proofs.checker.vnnlib import parse_vnnlib

FORMAT = "certnn-certificate"
VERSION = 1
SEMANTICS = {
    "real": "real arithmetic over the stored weights (float32 weights read exactly); "
    "float32/float64 inference rounding is not covered"
}
MAX_DEPTH = 10_000
#: Whole-model properties (FORMAT.md section 11): parameter -> its parser, or its choices.
PROPERTIES = {
    "valid-probabilities": {"sum_tolerance": enc.parse_float},
    "finite": {},
    "lipschitz": {"bound": enc.parse_float, "norm": ("inf", "1", "2")},
    "monotonic": {"input": enc.parse_int, "output": enc.parse_int, "increasing": (True, False)},
}


@dataclass
class CheckReport:
    """What the checker concluded: valid (given what it lists as ``trusted``), malformed
    (exit code 2) or else invalid, ``reason`` why not, and one line per fact checked."""

    valid: bool = False
    malformed: bool = False
    checked: list[str] = field(default_factory=list)
    trusted: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def exit_code(self) -> int:
        """0 valid, 1 invalid, 2 malformed."""
        return 0 if self.valid else (2 if self.malformed else 1)


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise Invalid(f"cannot read the {what} {path!r}: {exc.strerror}") from None


def _locate(given: str | None, doc: object, key: str, cert_path: str) -> str | None:
    """The file given, else the one the certificate records (relative to its folder)."""
    recorded = doc.get(key) if isinstance(doc, dict) else None
    recorded = recorded.get("path") if isinstance(recorded, dict) else None
    if given is not None or not isinstance(recorded, str) or not recorded:
        return given
    return os.path.join(os.path.dirname(os.path.abspath(cert_path)), recorded)


def check_certificate(path: str, model: str | None = None, spec: str | None = None) -> CheckReport:
    """Check the certificate at ``path`` against the model (and spec) files, by default the
    ones it records (relative to its folder). Never raises: the report says why."""
    report = CheckReport()
    try:
        try:
            doc = json.loads(_read(path, "certificate").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise Malformed(f"certificate is not valid JSON: {exc}") from None
        model_path = _locate(model, doc, "model", path)
        if model_path is None:
            raise Invalid("no model file given and none recorded in the certificate")
        model_bytes = _read(model_path, "model file")
        spec_path = _locate(spec, doc, "spec", path)
        spec_bytes = None
        if spec_path is not None and (spec is not None or os.path.exists(spec_path)):
            spec_bytes = _read(spec_path, "spec file")
        with np.errstate(all="ignore"):  # overflow gives Inf/NaN, which the rules reject
            check_document(doc, model_bytes, spec_bytes, report)
        report.valid = True
    except Malformed as exc:
        report.malformed, report.reason = True, str(exc)
    except (Invalid, rules.NotProved) as exc:
        report.reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - never a verdict from an unexpected error
        report.malformed = True
        report.reason = f"the checker could not process this input: {type(exc).__name__}: {exc}"
    return report


@functools.lru_cache(maxsize=4)  # certificates checked one after another share models
def _network(model_bytes: bytes) -> Network:
    net = read_model(model_bytes)
    net.hash = network_hash(net)
    return net


def check_document(
    doc: object, model_bytes: bytes, spec_bytes: bytes | None, report: CheckReport
) -> None:
    """Check a parsed certificate; raise Malformed/Invalid/NotProved, else return."""
    if not isinstance(doc, dict):
        raise Malformed("certificate is not a JSON object")
    get(doc, "format", "certificate", str, (FORMAT,))
    get(doc, "version", "certificate", int, (VERSION,))
    claim = get(doc, "claim", "certificate", str, ("holds", "violated"))
    if doc.get("subject") == "whole-model":
        return _check_whole_model(doc, claim, model_bytes, report)
    semantics = get(doc, "semantics", "certificate", str, tuple(SEMANTICS), error=Invalid)
    model = get(doc, "model", "certificate", dict)
    digest = sha256(model_bytes)
    if get(model, "sha256", "model", str) != digest:
        raise Invalid("the certificate is for a different model file (SHA-256 mismatch)")
    net = _network(model_bytes)
    if get(model, "network_sha256", "model", str) != net.hash:
        raise Invalid("the lowered network's hash differs from the certificate's")
    report.checked.append(f"model file SHA-256 {digest[:16]}... matches")
    report.trusted.extend(net.notes)
    report.checked.append(
        f"network re-derived from the model file: {len(net.layers)} layers, "
        f"{len(net.relu_layers)} ReLU layers, {net.input_size} -> {net.output_size}; hash matches"
    )

    subs, canon = _subproblems(get(doc, "subproblems", "certificate", list), net)
    if get(doc, "subproblems_sha256", "certificate", str) != sha256(enc.canonical_json(canon)):
        raise Invalid("the subproblems' hash does not match their content")
    if doc.get("spec") is not None:
        spec_hash = get(doc["spec"], "sha256", "spec", str)
        if spec_bytes is not None and sha256(spec_bytes) != spec_hash:
            raise Invalid("the certificate is for a different spec file (SHA-256 mismatch)")
    disjuncts = None
    if spec_bytes is None:
        report.trusted.append("no spec file: the property is the certificate's subproblems")
    else:
        try:
            text = spec_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("spec file is not UTF-8 text") from None
        disjuncts = [parse_vnnlib(text, net.input_size, net.output_size, f) for f in (False, True)]
        report.checked.append(f"spec file read: {len(disjuncts[0])} disjuncts of the violation")
    report.checked.append(f"claim {claim!r} under {semantics!r} semantics: {SEMANTICS[semantics]}")

    assumptions = _assumptions(get(doc, "assumptions", "certificate", list, default=[]), report)
    evidence = get(doc, "evidence", "certificate", dict)
    if claim == "violated":
        _check_violation(evidence, subs, net, disjuncts, report)
    else:
        if disjuncts is not None:
            _check_coverage(subs, disjuncts, report)
        _check_holds(evidence, subs, net, assumptions, report)
    tool = doc.get("tool")
    if isinstance(tool, dict):
        name, version = tool.get("name", "?"), tool.get("version", "?")
        report.checked.append(f"produced by {name} {version} (not relied on)")


def _check_whole_model(doc: dict, claim: str, model_bytes: bytes, report: CheckReport) -> None:
    """A whole-model certificate (FORMAT.md section 11): form and bindings; claim assumed."""
    get(doc, "semantics", "certificate", str, ("external",))
    digest = get(get(doc, "model", "certificate", dict), "sha256", "model", str)
    if digest != sha256(model_bytes):
        raise Invalid("the certificate is for a different model file (SHA-256 mismatch)")
    prop = get(doc, "property", "certificate", dict)
    name = get(prop, "name", "property", str, tuple(PROPERTIES))
    params = get(prop, "parameters", "property", dict)
    if set(params) != set(PROPERTIES[name]):
        raise Malformed(f"property.parameters: expected exactly {sorted(PROPERTIES[name])}")
    for key, kind in PROPERTIES[name].items():
        if callable(kind):
            kind(params[key], f"property.parameters.{key}")
        else:
            get(params, key, "property.parameters", type(kind[0]), kind)
    box, size = get(prop, "region", "property"), None
    if box is not None:
        box = [parse_array(get(box, k, "region"), f"region.{k}") for k in ("lower", "upper")]
        size = box[0].size
        if box[1].size != size or np.any(box[0] > box[1]):
            raise Malformed("property.region: lower and upper differ in size, or lower > upper")
    evidence = get(doc, "evidence", "certificate", dict)
    get(evidence, "rule", "evidence", str, ("assumed",))
    assumption = get(evidence, "assumption", "evidence", str)
    cex = get(evidence, "counterexample", "evidence", dict) if claim == "violated" else None
    points = [] if cex is None else get(cex, "inputs", "counterexample", list)
    points = [parse_array(p, f"counterexample.inputs[{i}]") for i, p in enumerate(points)]
    if cex is not None and (not points or len(({size} | {p.size for p in points}) - {None}) > 1):
        raise Malformed("counterexample.inputs: one or more points of the region's size")
    if box is not None and any(np.any(p < box[0]) or np.any(p > box[1]) for p in points):
        raise Invalid("the counterexample lies outside the region")
    items = get(doc, "assumptions", "certificate", list)
    engine = [a for a in items if isinstance(a, dict) and a.get("name") == assumption]
    if not engine:
        raise Malformed(f"evidence: unknown assumption {assumption!r}")
    statement = {"claim": claim, "model_sha256": digest, "property": prop, "counterexample": cex}
    if engine[0].get("statement_sha256") != sha256(enc.canonical_json(statement)):
        raise Invalid(f"assumption {assumption!r} is not about this statement (hash mismatch)")
    where = f"a box of {size} inputs" if box is not None else "all inputs"
    report.checked.append(f"model file SHA-256 {digest[:16]}... matches; {name!r} over {where}")
    report.checked.append(f"assumption {assumption!r} is about this claim, model and property")
    report.checked.extend(["counterexample point(s) exact and in the region"] * bool(points))
    _assumptions(items, report)
    why = "this checker does not re-derive whole-model properties"
    report.trusted.append(f"the claim {claim!r} rests entirely on assumption {assumption!r}: {why}")


def _subproblems(items: list, net: Network) -> tuple[list, list]:
    """Each subproblem as ``(lower, upper, [(C, d), ...])``, and their canonical form."""
    subs, canon = [], []
    for s, item in enumerate(items):
        where = f"subproblems[{s}]"
        lower = parse_array(get(item, "lower", where), f"{where}.lower", net.input_size)
        upper = parse_array(get(item, "upper", where), f"{where}.upper", net.input_size)
        if np.any(lower > upper):
            raise Malformed(f"{where}: lower > upper")
        polys = []
        for p, poly in enumerate(get(item, "unsafe", where, list)):
            pw = f"{where}.unsafe[{p}]"
            rows = get(poly, "C", pw, list)
            d = parse_array(get(poly, "d", pw), f"{pw}.d", len(rows))
            C = [parse_array(r, f"{pw}.C[{i}]", net.output_size) for i, r in enumerate(rows)]
            polys.append((np.array(C).reshape(len(rows), net.output_size), d))
        subs.append((lower, upper, polys))
        hexed = [{"C": [enc.hex_list(r) for r in C], "d": enc.hex_list(d)} for C, d in polys]
        canon.append({"lower": enc.hex_list(lower), "upper": enc.hex_list(upper), "unsafe": hexed})
    if not subs:
        raise Malformed("no subproblems")
    return subs, canon


def _exact(subs: list) -> list:
    """The subproblems as Fractions: per polytope ``(lower, upper, rows (c, d, False))``."""
    frac = lambda v: [Fraction(float(e)) for e in v]  # exact: floats are dyadic rationals
    return [
        (frac(lower), frac(upper), list(zip(map(frac, C), frac(d), [False] * len(d), strict=True)))
        for lower, upper, polys in subs
        for C, d in polys
    ]


def _norm_row(c: list[Fraction], d: Fraction) -> tuple:
    first = next((abs(v) for v in c if v), None)
    if first is None:  # the row 0 <= d: always true (d >= 0) or never
        return (), Fraction(0 if d >= 0 else -1)
    return tuple(v / first for v in c), d / first


def _check_coverage(subs: list, disjuncts: list, report: CheckReport) -> None:
    """Every disjunct of the spec's violation lies inside a certificate subproblem."""
    cert = [(lo, hi, [_norm_row(c, d) for c, d, _ in rows]) for lo, hi, rows in _exact(subs)]

    def covered(lower, upper, rows) -> bool:  # a box containing it, every row implied
        if lower is None or any(lo > hi for lo, hi in zip(lower, upper, strict=True)):
            return True  # an empty disjunct
        spec = [_norm_row(c, d) for c, d, _ in rows] + [((), 0)]  # implies every row 0 <= d, d >= 0
        return any(
            all(a <= b <= u <= v for a, b, u, v in zip(lo, lower, upper, hi, strict=True))
            and all(any(s == c and e <= d for s, e in spec) for c, d in poly)
            for lo, hi, poly in cert
        )

    rounded = [i for i, disjunct in enumerate(disjuncts[0]) if not covered(*disjunct)]
    for index in rounded:
        if not covered(*disjuncts[1][index]):
            raise Invalid(f"spec disjunct {index} is not covered by any certificate subproblem")
    report.checked.append("every spec disjunct lies in a certificate subproblem (box and rows)")
    if rounded:
        report.trusted.append("spec numerals taken as their nearest float64 (off by < 1 ulp)")


def _assumptions(items: list, report: CheckReport) -> set[str]:
    names = set()
    for i, item in enumerate(items):
        name = get(item, "name", f"assumptions[{i}]", str)
        kind = get(item, "kind", f"assumptions[{i}]", str)
        names.add(name)
        smt2 = item.get("smt2") if kind == "lemma" else None
        verdict = _z3(smt2) if isinstance(smt2, str) else None
        if verdict is True:
            report.checked.append(f"lemma {name!r} re-checked with Z3 (its negation is unsat)")
        elif verdict is False:
            raise Invalid(f"lemma {name!r}: Z3 does not confirm it")
        else:
            report.trusted.append(f"{kind} {name!r}: {item.get('statement', '')}"[:300])
    return names


def _z3(script: str) -> bool | None:
    """True: Z3 says the negation is unsat; False: sat or unparsable; None: not known."""
    try:
        import z3  # optional: only used to re-run recorded lemma checks
    except ImportError:
        return None
    try:
        solver = z3.Solver()
        solver.set("timeout", 10_000)
        solver.add(z3.parse_smt2_string(script))
        answer = solver.check()
    except z3.Z3Exception:
        return False
    return None if answer == z3.unknown else answer == z3.unsat


def _check_violation(
    evidence: dict, subs: list, net: Network, disjuncts, report: CheckReport
) -> None:
    cex = get(evidence, "counterexample", "evidence", dict)
    x = parse_array(get(cex, "input", "counterexample"), "counterexample.input", net.input_size)
    y, fx = rules.exact_output(net, x), [Fraction(float(v)) for v in x]
    where = "the spec" if disjuncts is not None else "its subproblem's unsafe polytopes"
    for rounding, table in enumerate([_exact(subs)] if disjuncts is None else disjuncts):
        for lower, upper, rows in table:
            inside = lower is not None and all(map(operator.le, lower, fx))
            if not (inside and all(map(operator.le, fx, upper))):
                continue
            values = ((sum(map(operator.mul, c, y)), d, strict) for c, d, strict in rows)
            if all(v < d or (v == d and not strict) for v, d, strict in values):
                report.checked.append(f"counterexample violates {where} in exact arithmetic")
                if rounding:
                    report.trusted.append("spec numerals taken as their nearest float64 values")
                return
    raise Invalid(f"the counterexample does not violate {where} in exact arithmetic")


def _check_holds(
    evidence: dict, subs: list, net: Network, assumptions: set, report: CheckReport
) -> None:
    trees = get(evidence, "trees", "evidence", list)
    if len(trees) != len(subs):
        raise Malformed(f"{len(trees)} proof trees for {len(subs)} subproblems")
    inherit = get(evidence, "inherit", "evidence", bool, default=False)
    widths = [net.layers[p].size for p in net.relu_layers]
    work = []  # (levels of a tree, the polytopes it proves)
    for s, (entry, (lower, upper, polys)) in enumerate(zip(trees, subs, strict=True)):
        where, covered = f"trees[{s}]", set()
        parts = [{"polytopes": list(range(len(polys))), "tree": entry}]  # one tree for all
        if isinstance(entry, dict) and "parts" in entry:
            parts = get(entry, "parts", where, list)
        for i, part in enumerate(parts):
            pw = f"{where}.parts[{i}]"
            ids = get(part, "polytopes", pw, list)
            ids = {enc.parse_int(v, f"{pw}.polytopes", 0, len(polys)) for v in ids}
            levels = _structure(get(part, "tree", pw), lower, upper, widths, assumptions, where)
            work.append((levels, [polys[k] for k in sorted(ids)]))
            covered |= ids
        if covered != set(range(len(polys))):
            missing = sorted(set(range(len(polys))) - covered)
            raise Invalid(f"{where}: the parts leave unsafe polytopes {missing} unproved")
    counts: Counter = Counter()
    wide = max([net.input_size] + [layer.size for layer in net.layers])
    chunk = max(1, 1_000_000 // (2 * wide * wide))  # regions stacked: arrays of a few MB
    for levels, polys in work:
        inh: dict = {}  # split node id -> the bounds its children inherit (None: none)
        for level in levels:
            found, groups = {}, {}  # regions checked together: by rule and slope mode
            for n in level:
                parent, ident, leaf = n[0], n[1], n[6]
                if parent is not None and parent not in inh:
                    continue  # in a subtree shown empty
                if leaf is None:
                    found[ident] = inh.get(parent)
                    if inherit:
                        groups.setdefault(("linear", False), []).append(n)
                else:
                    counts[leaf[0]] += 1
                    if not leaf[0].startswith("assumed:"):
                        groups.setdefault(leaf[:2], []).append(n)
            for (rule, everywhere), nodes in groups.items():
                for i in range(0, len(nodes), chunk):
                    part = nodes[i : i + chunk]
                    parent, _, lo, hi, phases, _, leaf = zip(*part, strict=True)
                    stack = (np.stack(lo), np.stack(hi), phases, [inh.get(p) for p in parent])
                    stack += ([f and f[2] for f in leaf], [f is None for f in leaf])
                    got = rules.each(rules.check_group, net, stack, rule, everywhere, polys)
                    for n, why in zip(part, got, strict=True):
                        if n[6] is not None and why is not None:
                            raise rules.NotProved(f"{n[5]} ({rule}): {why}")
                        if why is rules.EMPTY:
                            counts["empty subtree"] += 1
                            del found[n[1]]
                        elif isinstance(why, dict):
                            found[n[1]] = why  # else (not finite): children keep the node's
            inh = found
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    report.checked.append(
        f"{len(subs)} subproblem(s): split trees cover each box; "
        f"{sum(counts.values())} leaves checked ({detail})"
    )
    for key, value in counts.items():
        if key.startswith("assumed:"):
            report.trusted.append(f"{value} leaves closed by assumption {key[8:]!r}, not checked")


def _structure(tree, lower, upper, widths: list[int], assumptions: set, where: str) -> list:
    """Read a whole proof tree (every check that needs no bounds) into levels by depth.

    Each node is ``(parent id, id, lower, upper, phases, where, leaf)``, ``leaf`` None for
    a split, else ``(rule, slopes everywhere, slopes)`` or ``("assumed:NAME", False, None)``.
    """
    levels: list[list] = []
    stack = [(tree, lower, upper, {}, where, 0, None)]
    while stack:
        node, lo, hi, phases, where, depth, parent = stack.pop()
        if depth > MAX_DEPTH or not isinstance(node, dict):
            raise Malformed(f"{where}: not a proof node")
        if depth == len(levels):
            levels.append([])
        ident, leaf, children = (depth, len(levels[depth])), None, []  # id: its place
        if "split" not in node:
            leaf = _leaf(node, where, widths, assumptions)
        elif get(node, "split", where, str, ("input", "relu")) == "input":
            dim = enc.parse_int(get(node, "dim", where), f"{where}.dim", 0, lo.size)
            value = enc.parse_float(get(node, "value", where), f"{where}.value")
            if not lo[dim] <= value <= hi[dim]:
                raise Invalid(f"{where}: split value outside the box on dimension {dim}")
            below_hi, above_lo = hi.copy(), lo.copy()
            below_hi[dim], above_lo[dim] = value, value
            children = [("below", lo, below_hi, phases), ("above", above_lo, hi, phases)]
        else:
            layer = enc.parse_int(get(node, "layer", where), f"{where}.layer", 0, len(widths))
            neuron = enc.parse_int(get(node, "neuron", where), f"{where}.neuron", 0, widths[layer])
            old = phases.get((layer, neuron), 0)
            off = {**phases, (layer, neuron): -1 if old in (0, -1) else 2}  # 2: both, z = 0
            on = {**phases, (layer, neuron): 1 if old in (0, 1) else 2}
            children = [("inactive", lo, hi, off), ("active", lo, hi, on)]
        for key, *child in children:
            stack.append((get(node, key, where), *child, f"{where}.{key}", depth + 1, ident))
        levels[depth].append((parent, ident, lo, hi, phases, where, leaf))
    return levels


def _leaf(node: dict, where: str, widths: list[int], assumptions: set) -> tuple:
    rule = get(node, "rule", where, str, ("interval", "linear", "infeasible", "assumed"))
    if rule == "assumed":
        name = get(node, "assumption", where, str)
        if name not in assumptions:
            raise Malformed(f"{where}: unknown assumption {name!r}")
        return (f"assumed:{name}", False, None)
    mode = get(node, "intermediate", where, str, ("adaptive", "slopes"), "adaptive")
    rows = node.get("rows")  # a hint only: every row is tried
    if rows is not None and not (isinstance(rows, list) and all(isinstance(r, int) for r in rows)):
        raise Malformed(f"{where}.rows: a list of row indices")
    slopes = node.get("slopes")
    if slopes is None:
        return (rule, mode == "slopes", None)
    if not isinstance(slopes, dict):
        raise Malformed(f"{where}.slopes: expected an object")
    out = {}
    for key, array in slopes.items():
        if not key.isdigit() or int(key) >= len(widths):
            raise Malformed(f"{where}.slopes: no ReLU layer {key!r}")
        alpha = parse_array(array, f"{where}.slopes[{key}]", widths[int(key)])
        if np.any(alpha < 0) or np.any(alpha > 1):
            raise Invalid(f"{where}.slopes[{key}]: slopes must lie in [0, 1]")
        out[int(key)] = alpha
    return (rule, mode == "slopes", out)
