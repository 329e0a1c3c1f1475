"""Mutation tests: altered certificates are rejected, and forged proofs of false claims too.

Every mutation is classified before it is checked:

* ``reject``: it changes what the certificate claims (claim, model, spec, region, unsafe
  sets, hashes) or breaks its structure: the checker must reject it (exit 1 or 2);
* ``malformed``: not a well-formed document: exit code 2 exactly;
* ``any``: it changes only the evidence of a true claim, so acceptance is allowed (the
  claim stays true); the checker must still answer without crashing.

Forged certificates (random evidence with correct hashes) for *false* claims, where a
concrete violating input is known, must all be rejected: any acceptance would be a
wrong HOLDS.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random

import numpy as np
import pytest
from certkit import TEST, Closed, InputSplit, ReluSplit, interval_leaf, load, make_cert, split_tree
from certkit import relu_inputs as relu_names

from proofs.checker import check_certificate
from proofs.checker.encoding import canonical_json
from prover.spec import Box, Polytope, Subproblem

pytestmark = pytest.mark.skipif(not TEST.exists(), reason="benchmarks not available")


def _hash_subproblems(doc: dict) -> None:
    doc["subproblems_sha256"] = hashlib.sha256(canonical_json(doc["subproblems"])).hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Small real certificates: (document, model path, spec path), all valid."""
    out = tmp_path_factory.mktemp("base")
    certs = []
    small, small_spec = TEST / "test_small.onnx", TEST / "test_small.vnnlib"
    graph, subs = load(small, small_spec)
    tree = split_tree(graph, subs[0], interval_leaf(graph, subs[0]), force=3)
    certs.append((make_cert(out / "a.json", small, small_spec, [tree]), small, small_spec))
    first, second = relu_names(graph)
    tree = InputSplit(
        0, 0.25, ReluSplit(first, 1, Closed("interval"), Closed("linear")), Closed("linear")
    )
    certs.append((make_cert(out / "b.json", small, small_spec, [tree]), small, small_spec))
    unsat, prop = TEST / "test_unsat.onnx", TEST / "test_prop.vnnlib"
    certs.append((make_cert(out / "c.json", unsat, prop, [Closed("linear")]), unsat, prop))
    sat = TEST / "test_sat.onnx"
    from test_certificates import find_violation

    _, sat_subs = load(sat, prop)
    x = find_violation(sat, sat_subs[0], np.random.default_rng(1))
    certs.append(
        (make_cert(out / "d.json", sat, prop, counterexample=x, claim="violated"), sat, prop)
    )
    for doc, model, spec in certs:
        (out / "x.json").write_text(json.dumps(doc))
        report = check_certificate(str(out / "x.json"), str(model), str(spec))
        assert report.valid, report.reason
    return certs


def _numbers(obj, path=()):
    """Paths of every hex-number string inside obj."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, path + (i,))
    elif isinstance(obj, str) and obj.startswith(("0x", "-0x")):
        yield path


def _get(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def _set(obj, path, value):
    _get(obj, path[:-1])[path[-1]] = value


def _splits(obj, path=()):
    if isinstance(obj, dict):
        if "split" in obj:
            yield path
        for k, v in obj.items():
            yield from _splits(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _splits(v, path + (i,))


def _bump(value: float, rng: random.Random, direction: int) -> float:
    """A strictly larger (direction 1) or smaller (-1) float."""
    step = abs(value) * 10.0 ** rng.uniform(-12, 0) + 10.0 ** rng.uniform(-12, 0)
    return value + direction * step


def mutate(doc: dict, rng: random.Random, model, spec):
    """One random mutation: (document or raw text, model, spec, class, description)."""
    doc = copy.deepcopy(doc)
    kind = rng.choice(
        [
            "sub-number", "shrink-box", "enlarge-box", "lower-d", "change-C", "claim",
            "model-hash", "network-hash", "spec-hash", "other-model", "other-spec",
            "truncate", "garbage", "drop-leaf", "swap-sides", "split-value", "leaf-rule",
            "drop-tree", "drop-subproblem", "version", "drop-field", "cex-outside",
            "cex-move", "evidence-number",
        ]
    )  # fmt: skip
    holds = doc["claim"] == "holds"
    sub = doc["subproblems"][0]
    if kind == "sub-number":
        path = rng.choice(list(_numbers(doc["subproblems"])))
        old = float.fromhex(_get(doc["subproblems"], path))
        _set(doc["subproblems"], path, float.hex(_bump(old, rng, rng.choice([-1, 1]))))
        return doc, model, spec, "reject", kind
    if kind in ("shrink-box", "enlarge-box"):
        i = rng.randrange(len(sub["lower"]))
        side = rng.choice(["lower", "upper"])
        old = float.fromhex(sub[side][i])
        inward = 1 if side == "lower" else -1
        direction = inward if kind == "shrink-box" else -inward
        new = _bump(old, rng, direction)
        other = float.fromhex(sub["upper" if side == "lower" else "lower"][i])
        if kind == "shrink-box" and (new - other) * inward > 0:
            new = (old + other) / 2
        if new == old:
            return doc, model, spec, "any", kind
        sub[side][i] = float.hex(new)
        _hash_subproblems(doc)  # a consistent forgery: the spec must catch it
        # a smaller box claims less than the spec asks (reject); a larger one claims more
        return doc, model, spec, "reject" if kind == "shrink-box" and holds else "any", kind
    if kind == "lower-d":  # a smaller unsafe set: a weaker claim than the spec's
        poly = rng.choice(sub["unsafe"])
        i = rng.randrange(len(poly["d"]))
        poly["d"][i] = float.hex(_bump(float.fromhex(poly["d"][i]), rng, -1))
        _hash_subproblems(doc)
        # for 'violated' the spec file is the statement: the counterexample still violates it
        return doc, model, spec, "reject" if holds else "any", kind
    if kind == "change-C":
        poly = rng.choice(sub["unsafe"])
        row = rng.choice(poly["C"])
        j = rng.randrange(len(row))
        old = float.fromhex(row[j])
        row[j] = float.hex(_bump(old, rng, rng.choice([-1, 1])))
        _hash_subproblems(doc)
        new = float.fromhex(row[j])
        d = float.fromhex(poly["d"][poly["C"].index(row)])
        if len(row) == 1 and old * new > 0 and d / abs(new) >= d / abs(old):
            return doc, model, spec, "any", kind  # one column: a rescaled, larger unsafe set
        return doc, model, spec, "reject" if holds else "any", kind
    if kind == "claim":
        doc["claim"] = "violated" if holds else "holds"
        return doc, model, spec, "reject", kind
    if kind in ("model-hash", "network-hash", "spec-hash"):
        section, key = {
            "model-hash": ("model", "sha256"),
            "network-hash": ("model", "network_sha256"),
            "spec-hash": ("spec", "sha256"),
        }[kind]
        digest = list(doc[section][key])
        i = rng.randrange(len(digest))
        digest[i] = "0123456789abcdef".replace(digest[i], "")[rng.randrange(15)]
        doc[section][key] = "".join(digest)
        return doc, model, spec, "reject", kind
    if kind == "other-model":
        others = [p for p in TEST.glob("*.onnx") if p != model]
        return doc, rng.choice(others), spec, "reject", kind
    if kind == "other-spec":
        others = [p for p in TEST.glob("*.vnnlib") if p.read_bytes() != spec.read_bytes()]
        return doc, model, rng.choice(others), "reject", kind
    text = json.dumps(doc)
    if kind == "truncate":
        return text[: rng.randrange(len(text))], model, spec, "malformed", kind
    if kind == "garbage":
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice(["}", "]", ",", '"', "{", "x"]) + text[i:]
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return text, model, spec, "malformed", kind
        return text, model, spec, "any", kind  # e.g. a changed path or tool name
    if kind == "version":
        doc["version"] = 2
        return doc, model, spec, "malformed", kind
    if kind == "drop-field":
        del doc[rng.choice(["claim", "model", "subproblems", "evidence", "semantics"])]
        return doc, model, spec, "reject", kind
    if holds:
        trees = doc["evidence"]["trees"]
        splits = list(_splits(trees))
        if kind == "drop-leaf" and splits:
            node = _get(trees, rng.choice(splits))
            keys = ("below", "above") if node["split"] == "input" else ("inactive", "active")
            del node[rng.choice(keys)]
            return doc, model, spec, "malformed", kind
        if kind == "swap-sides" and splits:
            node = _get(trees, rng.choice(splits))
            a, b = ("below", "above") if node["split"] == "input" else ("inactive", "active")
            node[a], node[b] = node[b], node[a]
            return doc, model, spec, "any", kind
        if kind == "split-value":
            inputs = [p for p in splits if _get(trees, p)["split"] == "input"]
            if inputs:
                node = _get(trees, rng.choice(inputs))
                node["value"] = float.hex(
                    _bump(float.fromhex(node["value"]), rng, rng.choice([-1, 1]))
                )
                return doc, model, spec, "any", kind
        if kind == "leaf-rule":
            node = trees[0]
            while "split" in node:
                node = node[rng.choice([k for k in node if isinstance(node[k], dict)])]
            node["rule"] = rng.choice(["interval", "linear", "infeasible", "lp", "magic"])
            return doc, model, spec, "reject" if node["rule"] in ("lp", "magic") else "any", kind
        if kind == "drop-tree":
            trees.pop()
            return doc, model, spec, "reject", kind
        if kind == "drop-subproblem" and len(doc["subproblems"]) > 1:
            doc["subproblems"].pop()
            trees.pop()
            _hash_subproblems(doc)
            return doc, model, spec, "reject", kind
        if kind == "evidence-number":
            paths = list(_numbers(trees))
            if paths:
                path = rng.choice(paths)
                old = float.fromhex(_get(trees, path))
                _set(trees, path, float.hex(_bump(old, rng, rng.choice([-1, 1]))))
                return doc, model, spec, "any", kind
    else:
        cex = doc["evidence"]["counterexample"]
        i = rng.randrange(len(cex["input"]))
        x = float.fromhex(cex["input"][i])
        if kind == "cex-outside":  # beyond the box on one coordinate
            lo, hi = float.fromhex(sub["lower"][i]), float.fromhex(sub["upper"][i])
            cex["input"][i] = float.hex(rng.choice([_bump(lo, rng, -1), _bump(hi, rng, 1)]))
            return doc, model, spec, "reject", kind
        if kind == "cex-move":
            cex["input"][i] = float.hex(_bump(x, rng, rng.choice([-1, 1])))
            return doc, model, spec, "any", kind
    doc["claim"] = "maybe"
    return doc, model, spec, "malformed", "claim-garbage"


def test_a_thousand_mutations_are_classified_and_rejected(base, tmp_path):
    rng = random.Random(20261126)
    path = tmp_path / "m.json"
    seen: dict[str, int] = {}
    accepted_any = 0
    for n in range(1100):
        doc, model, spec = base[n % len(base)]
        mutated, model, spec, expect, kind = mutate(doc, rng, model, spec)
        path.write_text(mutated if isinstance(mutated, str) else json.dumps(mutated))
        report = check_certificate(str(path), str(model), str(spec))
        code = report.exit_code
        seen[kind] = seen.get(kind, 0) + 1
        where = f"mutation {n} ({kind}): {report.reason}"
        if expect == "reject":
            assert code in (1, 2), where
        elif expect == "malformed":
            assert code == 2, where
        else:
            assert code in (0, 1, 2), where
            accepted_any += code == 0
    assert len(seen) >= 20  # every kind of mutation was exercised
    assert accepted_any > 0  # semantic-preserving mutations exist and may pass


def _random_tree(rng: random.Random, n_inputs: int, widths: list[int], depth: int) -> dict:
    r = rng.random()
    if depth > 0 and r < 0.35:
        dim = rng.randrange(n_inputs)
        return {
            "split": "input", "dim": dim, "value": float.hex(rng.uniform(-1, 1)),
            "below": _random_tree(rng, n_inputs, widths, depth - 1),
            "above": _random_tree(rng, n_inputs, widths, depth - 1),
        }  # fmt: skip
    if depth > 0 and r < 0.6:
        layer = rng.randrange(len(widths))
        return {
            "split": "relu", "layer": layer, "neuron": rng.randrange(widths[layer]),
            "inactive": _random_tree(rng, n_inputs, widths, depth - 1),
            "active": _random_tree(rng, n_inputs, widths, depth - 1),
        }  # fmt: skip
    leaf = {"rule": rng.choice(["interval", "linear", "linear", "infeasible"])}
    if leaf["rule"] != "interval" and rng.random() < 0.7:
        leaf["slopes"] = {
            str(k): [float.hex(rng.choice([0.0, 1.0, rng.random()])) for _ in range(w)]
            for k, w in enumerate(widths)
            if rng.random() < 0.7
        }
        if rng.random() < 0.5:
            leaf["intermediate"] = "slopes"
    return leaf


def _fix_split_values(tree: dict, lower: list, upper: list) -> None:
    """Move random input-split values inside their box (so the forgery is well formed)."""
    stack = [(tree, list(lower), list(upper))]
    while stack:
        node, lo, hi = stack.pop()
        if node.get("split") == "input":
            d = node["dim"]
            t = (float.fromhex(node["value"]) + 1) / 2
            value = lo[d] + t * (hi[d] - lo[d])
            node["value"] = float.hex(value)
            below_hi, above_lo = list(hi), list(lo)
            below_hi[d], above_lo[d] = value, value
            stack += [(node["below"], lo, below_hi), (node["above"], above_lo, hi)]
        elif node.get("split") == "relu":
            stack += [(node["inactive"], lo, hi), (node["active"], lo, hi)]


def _false_claims(tmp_path):
    """(document, model, spec) whose claim 'holds' is false, with a witness."""
    out = []
    prop = TEST / "test_prop.vnnlib"
    sat = TEST / "test_sat.onnx"  # the benchmark says 'sat': the property fails
    out.append((make_cert(tmp_path / "f1.json", sat, prop, [Closed("interval")]), sat, prop))
    # test_unsat with an unsafe set that contains an actual output: y_0 <= y_0(x) + 0.01
    from prover.semantics import evaluate

    graph, subs = load(TEST / "test_unsat.onnx", prop)
    x = subs[0].box.center
    y = np.asarray(evaluate(graph, x)).reshape(-1)
    c = np.zeros(5)
    c[0] = 1.0
    sub = Subproblem(subs[0].box, (Polytope(c[None], [y[0] + 0.01]),))
    from proofs.writer import write_certificate

    write_certificate(
        tmp_path / "f2.json", graph=graph, model_path_or_bytes=str(TEST / "test_unsat.onnx"),
        subproblems=[sub], claim="holds", tree=Closed("interval"),
    )  # fmt: skip
    out.append((json.loads((tmp_path / "f2.json").read_text()), TEST / "test_unsat.onnx", None))
    # test_small on [-3, 1] claiming y > 78 (y = 78.5 at x = 1)
    graph, _ = load(TEST / "test_small.onnx", TEST / "test_small.vnnlib")
    sub = Subproblem(Box([-3.0], [1.0]), (Polytope(np.array([[-1.0]]), [-78.0]),))
    write_certificate(
        tmp_path / "f3.json", graph=graph, model_path_or_bytes=str(TEST / "test_small.onnx"),
        subproblems=[sub], claim="holds", tree=Closed("interval"),
    )  # fmt: skip
    out.append((json.loads((tmp_path / "f3.json").read_text()), TEST / "test_small.onnx", None))
    return out


def test_forged_proofs_of_false_claims_are_all_rejected(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "forged.json"
    claims = _false_claims(tmp_path)
    for doc, model, spec in claims:
        path.write_text(json.dumps(doc))
        assert check_certificate(str(path), str(model), spec and str(spec)).exit_code == 1
    checked = 0
    for n in range(360):
        doc, model, spec = claims[n % len(claims)]
        doc = copy.deepcopy(doc)
        n_inputs = len(doc["subproblems"][0]["lower"])
        widths = [50] * 6 if n_inputs == 5 else [2, 2]
        tree = _random_tree(rng, n_inputs, widths, rng.randrange(0, 5))
        lower = [float.fromhex(v) for v in doc["subproblems"][0]["lower"]]
        upper = [float.fromhex(v) for v in doc["subproblems"][0]["upper"]]
        _fix_split_values(tree, lower, upper)
        doc["evidence"]["trees"] = [tree]
        doc["evidence"]["inherit"] = rng.random() < 0.5  # inherited bounds stay sound
        path.write_text(json.dumps(doc))
        report = check_certificate(str(path), str(model), spec and str(spec))
        assert not report.valid, f"forged certificate {n} accepted: {json.dumps(tree)[:300]}"
        checked += 1
    assert checked == 360
