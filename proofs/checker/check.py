"""Check a whole certificate: bindings, statement, evidence. See proofs/FORMAT.md."""

from __future__ import annotations

import json
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


_MODEL_CACHE: dict[str, Network] = {}  # a few lowered networks, by file hash


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


def check_document(
    doc: object, model_bytes: bytes, spec_bytes: bytes | None, report: CheckReport
) -> None:
    """Check a parsed certificate; raise Malformed/Invalid/NotProved, else return."""
    if not isinstance(doc, dict):
        raise Malformed("certificate is not a JSON object")
    if get(doc, "format", "certificate") != FORMAT:
        raise Malformed(f"not a {FORMAT} document")
    version = get(doc, "version", "certificate")
    if version != VERSION:
        raise Malformed(f"format version {version!r} is not supported (this checker: {VERSION})")
    claim = get(doc, "claim", "certificate", str)
    if claim not in ("holds", "violated"):
        raise Malformed(f"claim must be 'holds' or 'violated', not {claim!r}")
    semantics = get(doc, "semantics", "certificate", str)
    if semantics not in SEMANTICS:
        raise Invalid(f"semantics {semantics!r} is not one this checker implements")

    model = get(doc, "model", "certificate", dict)
    if get(model, "sha256", "model", str) != sha256(model_bytes):
        raise Invalid("the certificate is for a different model file (SHA-256 mismatch)")
    net = _MODEL_CACHE.get(sha256(model_bytes))
    if net is None:
        if len(_MODEL_CACHE) > 4:
            _MODEL_CACHE.clear()
        net = _MODEL_CACHE[sha256(model_bytes)] = read_model(model_bytes)
        net.hash = network_hash(net)
    if get(model, "network_sha256", "model", str) != net.hash:
        raise Invalid("the lowered network's hash differs from the certificate's")
    report.checked.append(f"model file SHA-256 {sha256(model_bytes)[:16]}... matches")
    report.trusted.extend(net.notes)
    report.checked.append(
        f"network re-derived from the model file: {len(net.layers)} layers, "
        f"{len(net.relu_layers)} ReLU layers, {net.input_size} -> {net.output_size}; hash matches"
    )

    subs, canon = _subproblems(get(doc, "subproblems", "certificate", list), net)
    if get(doc, "subproblems_sha256", "certificate", str) != sha256(enc.canonical_json(canon)):
        raise Invalid("the subproblems' hash does not match their content")
    disjuncts = None
    if doc.get("spec") is not None:
        spec_hash = get(doc["spec"], "sha256", "spec", str)
        if spec_bytes is None:
            report.trusted.append(
                "spec file not available: the property is taken as the certificate states it"
            )
        elif sha256(spec_bytes) != spec_hash:
            raise Invalid("the certificate is for a different spec file (SHA-256 mismatch)")
    if spec_bytes is not None:
        try:
            text = spec_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("spec file is not UTF-8 text") from None
        disjuncts = [
            parse_vnnlib(text, net.input_size, net.output_size, flag) for flag in (False, True)
        ]
        report.checked.append(f"spec file read: {len(disjuncts[0])} disjuncts of the violation")
    else:
        report.trusted.append("no spec file: the property is the certificate's subproblems")
    report.checked.append(f"claim {claim!r} under {semantics!r} semantics: {SEMANTICS[semantics]}")

    assumptions = _assumptions(doc.get("assumptions", []), report)
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

    def covered(disjunct: tuple) -> bool:
        lower, upper, rows = disjunct
        if lower is None or any(lo > hi for lo, hi in zip(lower, upper, strict=True)):
            return True  # an empty disjunct
        spec = [_norm_row(c, d) for c, d, _ in rows]
        for lo, hi, poly in cert:  # the box contains the disjunct's, each row is implied
            if all(a <= b for a, b in zip(lo, lower, strict=True)) and all(
                a >= b for a, b in zip(hi, upper, strict=True)
            ):
                implied = (
                    r[1] >= 0 if r[0] == () else any(s == r[0] and e <= r[1] for s, e in spec)
                    for r in poly
                )
                if all(implied):
                    return True
        return False

    rounded = False
    for index, exact in enumerate(disjuncts[0]):
        if not covered(exact):
            if not covered(disjuncts[1][index]):
                raise Invalid(f"spec disjunct {index} is not covered by any certificate subproblem")
            rounded = True
    report.checked.append(
        "every disjunct of the spec lies in a certificate subproblem (box and unsafe rows)"
    )
    if rounded:
        report.trusted.append("spec numerals taken as their nearest float64 (off by < 1 ulp)")


def _assumptions(items: object, report: CheckReport) -> set[str]:
    if not isinstance(items, list):
        raise Malformed("assumptions must be a list")
    names = set()
    for i, item in enumerate(items):
        name = get(item, "name", f"assumptions[{i}]", str)
        kind = get(item, "kind", f"assumptions[{i}]", str)
        names.add(name)
        verdict = (
            _z3(item["smt2"]) if kind == "lemma" and isinstance(item.get("smt2"), str) else None
        )
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
    y = rules.exact_output(net, x)
    fx = [Fraction(float(v)) for v in x]
    where = "a subproblem's box; its exact output is in an unsafe set"
    tables = [_exact(subs)] if disjuncts is None else disjuncts
    if disjuncts is not None:
        where = "the spec's input box; its exact output violates the spec"
    for rounding, table in enumerate(tables):
        for lower, upper, rows in table:
            inside = lower is not None and all(
                lo <= v <= hi for lo, v, hi in zip(lower, fx, upper, strict=True)
            )
            if inside and rules.in_rows(y, rows):
                report.checked.append(f"counterexample in {where}")
                if rounding:
                    report.trusted.append("spec numerals taken as their nearest float64 values")
                return
    if disjuncts is not None:
        raise Invalid("the counterexample does not violate the spec in exact arithmetic")
    raise Invalid("the counterexample's exact output is in no unsafe polytope of its box")


def _parts(entry: object, n_polys: int, where: str) -> list[tuple[list[int], object]]:
    """A subproblem's evidence: one tree for all polytopes, or parts covering them."""
    if not (isinstance(entry, dict) and "parts" in entry):
        return [(list(range(n_polys)), entry)]
    parts, covered = [], set()
    for i, part in enumerate(get(entry, "parts", where, list)):
        pw = f"{where}.parts[{i}]"
        indices = [
            enc.parse_int(v, f"{pw}.polytopes", 0, n_polys)
            for v in get(part, "polytopes", pw, list)
        ]
        covered.update(indices)
        parts.append((sorted(set(indices)), get(part, "tree", pw)))
    if covered != set(range(n_polys)):
        missing = sorted(set(range(n_polys)) - covered)
        raise Invalid(f"{where}: the parts leave unsafe polytopes {missing} unproved")
    return parts


def _check_holds(
    evidence: dict, subs: list, net: Network, assumptions: set, report: CheckReport
) -> None:
    trees = get(evidence, "trees", "evidence", list)
    if len(trees) != len(subs):
        raise Malformed(f"{len(trees)} proof trees for {len(subs)} subproblems")
    inherit = evidence.get("inherit", False)
    if not isinstance(inherit, bool):
        raise Malformed("evidence.inherit must be true or false")
    widths = [net.layers[p].size for p in net.relu_layers]
    work = []
    for s, (entry, (lower, upper, polys)) in enumerate(zip(trees, subs, strict=True)):
        for indices, tree in _parts(entry, len(polys), f"trees[{s}]"):
            levels = _structure(tree, lower, upper, widths, assumptions, f"trees[{s}]")
            work.append((levels, [polys[i] for i in indices]))
    counts: Counter = Counter()
    chunk = rules.chunk_size(net)
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
                elif leaf[0] == "assumed":
                    counts[f"assumed:{leaf[2]}"] += 1
                else:
                    counts[leaf[0]] += 1
                if (leaf is None and inherit) or (leaf is not None and leaf[0] != "assumed"):
                    groups.setdefault(leaf[:2] if leaf else ("linear", False), []).append(n)
            for (rule, everywhere), nodes in groups.items():
                for i in range(0, len(nodes), chunk):
                    part = nodes[i : i + chunk]
                    stack = (np.stack([n[2] for n in part]), np.stack([n[3] for n in part]))
                    stack += ([n[4] for n in part], [inh.get(n[0]) for n in part])
                    stack += ([n[6] and n[6][2] for n in part], [n[6] is None for n in part])
                    got = rules.each(rules.check_group, net, stack, rule, everywhere, polys)
                    for n, why in zip(part, got, strict=True):
                        if n[6] is None and why is rules.EMPTY:
                            counts["empty subtree"] += 1
                            del found[n[1]]
                        elif n[6] is None and isinstance(why, dict):
                            found[n[1]] = why  # else (not finite): children keep the node's
                        elif n[6] is not None and why is not None:
                            raise rules.NotProved(f"{n[5]} ({rule}): {why}")
            inh = found
    total = sum(counts.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    report.checked.append(
        f"{len(subs)} subproblem(s): split trees cover each box; {total} leaves checked ({detail})"
    )
    for key, value in counts.items():
        if key.startswith("assumed:"):
            report.trusted.append(f"{value} leaves closed by assumption {key[8:]!r}, not checked")


def _structure(tree, lower, upper, widths: list[int], assumptions: set, where: str) -> list:
    """Read a whole proof tree (every check that needs no bounds) into levels by depth.

    Each node is ``(parent id, id, lower, upper, phases, where, leaf)``, ``leaf`` None for
    a split, else ``(rule, slopes everywhere, slopes)`` or ``("assumed", False, name)``.
    """
    levels: list[list] = []
    ident, stack = 0, [(tree, lower, upper, {}, where, 0, None)]
    while stack:
        node, lo, hi, phases, where, depth, parent = stack.pop()
        if depth > MAX_DEPTH or not isinstance(node, dict):
            raise Malformed(f"{where}: not a proof node")
        if depth == len(levels):
            levels.append([])
        ident, leaf = ident + 1, None
        if "split" in node:
            for child in _children(node, lo, hi, phases, where, widths):
                stack.append(child + (depth + 1, ident))
        else:
            leaf = _leaf(node, where, widths, assumptions)
        levels[depth].append((parent, ident, lo, hi, phases, where, leaf))
    return levels


def _leaf(node: dict, where: str, widths: list[int], assumptions: set) -> tuple:
    rule = get(node, "rule", where, str)
    if rule == "assumed":
        name = get(node, "assumption", where, str)
        if name not in assumptions:
            raise Malformed(f"{where}: unknown assumption {name!r}")
        return ("assumed", False, name)
    if rule not in ("interval", "linear", "infeasible"):
        raise Malformed(f"{where}: unknown rule {rule!r}")
    mode = node.get("intermediate", "adaptive")
    if mode not in ("adaptive", "slopes"):
        raise Malformed(f"{where}.intermediate: 'adaptive' or 'slopes'")
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


def _children(node: dict, lo, hi, phases: dict, where: str, widths: list[int]) -> list:
    """The two children of a split node, each ``(node, lower, upper, phases, where)``."""
    kind = node["split"]
    if kind == "input":
        dim = enc.parse_int(get(node, "dim", where), f"{where}.dim", 0, lo.size)
        value = enc.parse_float(get(node, "value", where), f"{where}.value")
        if not lo[dim] <= value <= hi[dim]:
            raise Invalid(f"{where}: split value outside the box on dimension {dim}")
        below_hi, above_lo = hi.copy(), lo.copy()
        below_hi[dim], above_lo[dim] = value, value
        return [
            (get(node, "below", where), lo, below_hi, phases, where + ".below"),
            (get(node, "above", where), above_lo, hi, phases, where + ".above"),
        ]
    if kind == "relu":
        layer = enc.parse_int(get(node, "layer", where), f"{where}.layer", 0, len(widths))
        neuron = enc.parse_int(get(node, "neuron", where), f"{where}.neuron", 0, widths[layer])
        old = phases.get((layer, neuron), 0)
        off = {**phases, (layer, neuron): -1 if old in (0, -1) else 2}  # 2: both, z = 0
        on = {**phases, (layer, neuron): 1 if old in (0, 1) else 2}
        return [
            (get(node, "inactive", where), lo, hi, off, where + ".inactive"),
            (get(node, "active", where), lo, hi, on, where + ".active"),
        ]
    raise Malformed(f"{where}: unknown split {kind!r}")
