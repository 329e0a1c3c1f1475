"""Check a whole certificate: bindings, statement, evidence. See proofs/FORMAT.md."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from proofs.checker import rules
from proofs.checker.encoding import (
    Invalid,
    Malformed,
    canonical_json,
    hex_list,
    parse_array,
    parse_float,
    parse_int,
    sha256,
)
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
    """What the checker concluded.

    Attributes:
        valid: the certificate proves its claim (given the ``trusted`` assumptions).
        malformed: the document is not a well-formed certificate (exit code 2).
        checked: what was checked, one line each.
        trusted: what was accepted without checking (assumptions), one line each.
        reason: why it was rejected ("" when valid).
    """

    valid: bool = False
    malformed: bool = False
    checked: list[str] = field(default_factory=list)
    trusted: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def exit_code(self) -> int:
        """0 valid, 1 invalid, 2 malformed."""
        return 0 if self.valid else (2 if self.malformed else 1)


_MODEL_CACHE: dict[str, Network] = {}


def _network(data: bytes) -> tuple[Network, str]:
    digest = sha256(data)
    if digest not in _MODEL_CACHE:
        if len(_MODEL_CACHE) > 4:
            _MODEL_CACHE.clear()
        net = read_model(data)
        net.hash = network_hash(net)
        _MODEL_CACHE[digest] = net
    net = _MODEL_CACHE[digest]
    return net, net.hash


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise Invalid(f"cannot read the {what} {path!r}: {exc.strerror}") from None


def _locate(given: str | None, recorded: object, cert_path: str) -> str | None:
    if given is not None:
        return given
    if not isinstance(recorded, str) or not recorded:
        return None
    if os.path.isabs(recorded):
        return recorded
    return os.path.join(os.path.dirname(os.path.abspath(cert_path)), recorded)


def check_certificate(path: str, model: str | None = None, spec: str | None = None) -> CheckReport:
    """Check the certificate at ``path`` against the model (and spec) files.

    ``model`` / ``spec`` default to the paths recorded in the certificate (relative paths
    are taken from the certificate's folder). Never raises for bad input: the report
    says valid, invalid or malformed, and why.
    """
    report = CheckReport()
    try:
        raw = _read(path, "certificate")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise Malformed(f"certificate is not valid JSON: {exc}") from None
        recorded = doc.get("model") if isinstance(doc, dict) else None
        model_path = _locate(
            model, recorded.get("path") if isinstance(recorded, dict) else None, path
        )
        if model_path is None:
            raise Invalid("no model file given and none recorded in the certificate")
        model_bytes = _read(model_path, "model file")
        spec_rec = doc.get("spec") if isinstance(doc, dict) else None
        spec_path = _locate(
            spec, spec_rec.get("path") if isinstance(spec_rec, dict) else None, path
        )
        spec_bytes = None
        if spec_path is not None and (spec is not None or os.path.exists(spec_path)):
            spec_bytes = _read(spec_path, "spec file")
        check_document(doc, model_bytes, spec_bytes, report)
        report.valid = True
    except Malformed as exc:
        report.malformed, report.reason = True, str(exc)
    except Invalid as exc:
        report.reason = str(exc)
    except rules.NotProved as exc:
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

    # -- the model --------------------------------------------------------------------
    model = get(doc, "model", "certificate", dict)
    if get(model, "sha256", "model", str) != sha256(model_bytes):
        raise Invalid("the certificate is for a different model file (SHA-256 mismatch)")
    net, net_hash = _network(model_bytes)
    if get(model, "network_sha256", "model", str) != net_hash:
        raise Invalid("the lowered network's hash differs from the certificate's")
    report.checked.append(f"model file SHA-256 {sha256(model_bytes)[:16]}... matches")
    report.trusted.extend(net.notes)
    report.checked.append(
        f"network re-derived from the model file: {len(net.layers)} layers, "
        f"{len(net.relu_layers)} ReLU layers, {net.input_size} -> {net.output_size}; hash matches"
    )

    # -- the statement ----------------------------------------------------------------
    subs = _subproblems(get(doc, "subproblems", "certificate", list), net)
    if get(doc, "subproblems_sha256", "certificate", str) != _subproblems_hash(
        doc["subproblems"], net
    ):
        raise Invalid("the subproblems' hash does not match their content")
    spec = doc.get("spec")
    disjuncts = None
    if spec is not None:
        spec_hash = get(spec, "sha256", "spec", str)
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


def _subproblems(items: list, net: Network) -> list:
    subs = []
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
            C = np.array(
                [parse_array(r, f"{pw}.C[{i}]", net.output_size) for i, r in enumerate(rows)]
            )
            polys.append((C.reshape(len(rows), net.output_size), d))
        subs.append((lower, upper, polys))
    if not subs:
        raise Malformed("no subproblems")
    return subs


def _subproblems_hash(items: list, net: Network) -> str:
    canon = []
    for lower, upper, polys in _subproblems(items, net):
        canon.append(
            {
                "lower": hex_list(lower),
                "upper": hex_list(upper),
                "unsafe": [{"C": [hex_list(r) for r in C], "d": hex_list(d)} for C, d in polys],
            }
        )
    return sha256(canonical_json(canon))


def _norm_row(c: list[Fraction], d: Fraction) -> tuple:
    first = next((abs(v) for v in c if v), None)
    if first is None:  # the row 0 <= d: always true (d >= 0) or never
        return (), Fraction(0 if d >= 0 else -1)
    return tuple(v / first for v in c), d / first


def _check_coverage(subs: list, disjuncts: list, report: CheckReport) -> None:
    """Every disjunct of the spec's violation lies inside a certificate subproblem."""
    cert = []
    for lower, upper, polys in subs:
        fl = [Fraction(float(v)) for v in lower]
        fu = [Fraction(float(v)) for v in upper]
        rows = [
            [
                _norm_row([Fraction(float(v)) for v in C[i]], Fraction(float(d[i])))
                for i in range(len(d))
            ]
            for C, d in polys
        ]
        cert.append((fl, fu, rows))
    rounded = False
    for index, exact in enumerate(disjuncts[0]):
        ok = _covered(exact, cert)
        if not ok and _covered(disjuncts[1][index], cert):
            ok = rounded = True
        if not ok:
            raise Invalid(f"spec disjunct {index} is not covered by any certificate subproblem")
    report.checked.append(
        "every disjunct of the spec lies in a certificate subproblem (box and unsafe rows)"
    )
    if rounded:
        report.trusted.append("spec numerals taken as their nearest float64 (off by < 1 ulp)")


def _covered(disjunct: tuple, cert: list) -> bool:
    lower, upper, rows = disjunct
    if lower is None or any(lo > hi for lo, hi in zip(lower, upper, strict=False)):
        return True  # an empty disjunct
    spec_rows = [_norm_row(c, d) for c, d, _ in rows]
    for fl, fu, polys in cert:
        if any(a > b for a, b in zip(fl, lower, strict=False)) or any(
            a < b for a, b in zip(fu, upper, strict=False)
        ):
            continue
        for poly in polys:
            # every certificate row is implied by a spec row: the spec polytope lies inside
            if all(_implied(r, spec_rows) for r in poly):
                return True
    return False


def _implied(row: tuple, spec_rows: list) -> bool:
    if row[0] == ():
        return row[1] >= 0
    return any(s[0] == row[0] and s[1] <= row[1] for s in spec_rows)


def _assumptions(items: object, report: CheckReport) -> set[str]:
    if not isinstance(items, list):
        raise Malformed("assumptions must be a list")
    names = set()
    for i, item in enumerate(items):
        name = get(item, "name", f"assumptions[{i}]", str)
        kind = get(item, "kind", f"assumptions[{i}]", str)
        statement = str(item.get("statement", ""))
        names.add(name)
        verdict = _recheck_smt2(item.get("smt2")) if kind == "lemma" else None
        if verdict is True:
            report.checked.append(f"lemma {name!r} re-checked with Z3 (its negation is unsat)")
        elif verdict is False:
            raise Invalid(f"lemma {name!r}: Z3 does not confirm it")
        else:
            report.trusted.append(f"{kind} {name!r}: {statement}"[:300])
    return names


def _recheck_smt2(script: object) -> bool | None:
    if not isinstance(script, str):
        return None
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
    if answer == z3.unknown:
        return None
    return answer == z3.unsat


def _check_violation(
    evidence: dict, subs: list, net: Network, disjuncts, report: CheckReport
) -> None:
    cex = get(evidence, "counterexample", "evidence", dict)
    x = parse_array(get(cex, "input", "counterexample"), "counterexample.input", net.input_size)
    y = rules.exact_output(net, x)
    fx = [Fraction(float(v)) for v in x]
    if disjuncts is not None:
        for exact_rounding, table in enumerate(disjuncts):
            for lower, upper, rows in table:
                if lower is None:
                    continue
                if all(
                    lo <= v <= hi for lo, v, hi in zip(lower, fx, upper, strict=False)
                ) and rules.in_rows(y, rows):
                    report.checked.append(
                        "counterexample in the spec's input box; its exact output violates the spec"
                    )
                    if exact_rounding:
                        report.trusted.append("spec numerals taken as their nearest float64 values")
                    return
        raise Invalid("the counterexample does not violate the spec in exact arithmetic")
    for lower, upper, polys in subs:
        if np.all(lower <= x) and np.all(x <= upper):
            for C, d in polys:
                rows = [
                    ([Fraction(float(v)) for v in C[i]], Fraction(float(d[i])), False)
                    for i in range(len(d))
                ]
                if rules.in_rows(y, rows):
                    report.checked.append(
                        "counterexample in a subproblem's box; its exact output is in an unsafe set"
                    )
                    return
    raise Invalid("the counterexample's exact output is in no unsafe polytope of its box")


def _parts(entry: object, n_polys: int, where: str) -> list[tuple[list[int], object]]:
    """A subproblem's evidence: one tree for all polytopes, or parts covering them."""
    if not (isinstance(entry, dict) and "parts" in entry):
        return [(list(range(n_polys)), entry)]
    parts, covered = [], set()
    for i, part in enumerate(get(entry, "parts", where, list)):
        pw = f"{where}.parts[{i}]"
        indices = [
            parse_int(v, f"{pw}.polytopes", 0, n_polys) for v in get(part, "polytopes", pw, list)
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
    widths = [net.layers[p].size for p in net.relu_layers]
    counts: Counter = Counter()
    work = []
    for s, (entry, (lower, upper, polys)) in enumerate(zip(trees, subs, strict=False)):
        for indices, tree in _parts(entry, len(polys), f"trees[{s}]"):
            work.append((tree, lower, upper, [polys[i] for i in indices], f"trees[{s}]"))
    inherit = evidence.get("inherit", False)
    if not isinstance(inherit, bool):
        raise Malformed("evidence.inherit must be true or false")
    chunk = rules.chunk_size(net)
    for tree, lower, upper, polys, root in work:
        inh: dict = {}  # split node id -> the bounds its children inherit (None: none)
        for level in _structure(tree, lower, upper, widths, assumptions, root):
            level = [n for n in level if n[0] is None or n[0] in inh]  # not in an empty subtree
            groups: dict = {}  # regions checked together: splits (None), leaves by rule
            for n in level:
                groups.setdefault(n[6] and n[6][:2] + (n[6][2] is None,), []).append(n)
            found = {n[1]: inh.get(n[0]) for n in groups.get(None, [])}
            leaves = [n[6] for n in level if n[6]]
            counts.update(f"assumed:{x[2]}" if x[0] == "assumed" else x[0] for x in leaves)
            for key, nodes in groups.items():
                if (key is None and not inherit) or (key is not None and key[0] == "assumed"):
                    continue
                for i in range(0, len(nodes), chunk):
                    part = nodes[i : i + chunk]
                    stack = (np.stack([n[2] for n in part]), np.stack([n[3] for n in part]))
                    stack += ([n[4] for n in part], [inh.get(n[0]) for n in part])
                    if key is None:  # not finite: the children keep the node's own bounds
                        for n, bounds in zip(
                            part, rules.each(rules.node_bounds, net, stack), strict=True
                        ):
                            if bounds is rules.EMPTY:
                                counts["empty subtree"] += 1
                                del found[n[1]]
                            elif isinstance(bounds, dict):
                                found[n[1]] = bounds
                        continue
                    stack += ([n[6][2] for n in part],)
                    got = rules.each(rules.check_leaves, net, stack, *key[:2], polys)
                    for n, why in zip(part, got, strict=True):
                        if why is not None:
                            raise rules.NotProved(f"{n[5]} ({key[0]}): {why}")
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
    ident = 0
    stack = [(tree, lower, upper, {}, where, 0, None)]
    while stack:
        node, lo, hi, phases, where, depth, parent = stack.pop()
        if depth > MAX_DEPTH or not isinstance(node, dict):
            raise Malformed(f"{where}: not a proof node")
        if depth == len(levels):
            levels.append([])
        ident, leaf = ident + 1, None
        if "split" in node:
            for child in _children(node, lo, hi, phases, where, depth, widths):
                stack.append(child + (ident,))
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
    slopes = _slopes(node.get("slopes"), widths, where)
    mode = node.get("intermediate", "adaptive")
    if mode not in ("adaptive", "slopes"):
        raise Malformed(f"{where}.intermediate: 'adaptive' or 'slopes'")
    rows = node.get("rows")  # a hint only: every row is tried
    if rows is not None and not (isinstance(rows, list) and all(isinstance(r, int) for r in rows)):
        raise Malformed(f"{where}.rows: a list of row indices")
    return (rule, mode == "slopes", slopes)


def _children(node, lo, hi, phases, where, depth, widths):
    kind = node["split"]
    if kind == "input":
        dim = parse_int(get(node, "dim", where), f"{where}.dim", 0, lo.size)
        value = parse_float(get(node, "value", where), f"{where}.value")
        if not lo[dim] <= value <= hi[dim]:
            raise Invalid(f"{where}: split value outside the box on dimension {dim}")
        below_hi, above_lo = hi.copy(), lo.copy()
        below_hi[dim], above_lo[dim] = value, value
        return [
            (get(node, "below", where), lo, below_hi, phases, where + ".below", depth + 1),
            (get(node, "above", where), above_lo, hi, phases, where + ".above", depth + 1),
        ]
    if kind == "relu":
        layer = parse_int(get(node, "layer", where), f"{where}.layer", 0, len(widths))
        neuron = parse_int(get(node, "neuron", where), f"{where}.neuron", 0, widths[layer])
        off, on = dict(phases), dict(phases)
        old = phases.get((layer, neuron), 0)
        off[(layer, neuron)] = -1 if old in (0, -1) else 2  # 2: both, pre-activation = 0
        on[(layer, neuron)] = 1 if old in (0, 1) else 2
        return [
            (get(node, "inactive", where), lo, hi, off, where + ".inactive", depth + 1),
            (get(node, "active", where), lo, hi, on, where + ".active", depth + 1),
        ]
    raise Malformed(f"{where}: unknown split {kind!r}")


def _slopes(value, widths: list[int], where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Malformed(f"{where}.slopes: expected an object")
    out = {}
    for key, array in value.items():
        if not key.isdigit() or int(key) >= len(widths):
            raise Malformed(f"{where}.slopes: no ReLU layer {key!r}")
        alpha = parse_array(array, f"{where}.slopes[{key}]", widths[int(key)])
        if np.any(alpha < 0) or np.any(alpha > 1):
            raise Invalid(f"{where}.slopes[{key}]: slopes must lie in [0, 1]")
        out[int(key)] = alpha
    return out
