"""Write certificates (proofs/FORMAT.md) from proof trees and counterexamples.

The writer lowers the model file with the checker's own reader
(:func:`proofs.checker.model.read_model`), so the network hash it records is the one an
independent checker re-derives. It maps the IR's ReLU nodes to the checker's ReLU layers
by order (the networks certificates cover are chains) and cross-checks the two lowerings
by evaluating both on points of the region: a disagreement raises ``CertificateError``
instead of writing a certificate about a different network.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from proofs.checker import FORMAT, VERSION
from proofs.checker.encoding import canonical_json, hex_list
from proofs.checker.model import Network, network_hash, read_model
from prover.engine.proof import Closed, InputSplit, ProofTree, ReluSplit
from prover.errors import CertificateError
from prover.ir import ops
from prover.ir.graph import Graph
from prover.semantics import evaluate
from prover.spec import Subproblem

TOOL = "certnn-prover"
CHECKED_RULES = ("interval", "linear", "infeasible")
LINEAR_METHODS = frozenset({"interval", "crown", "deeppoly", "alpha-crown", "linear"})


def write_certificate(
    path: str | os.PathLike,
    *,
    graph: Graph,
    model_path_or_bytes: str | os.PathLike | bytes,
    subproblems: Sequence[Subproblem],
    claim: object,
    tree: ProofTree | Sequence[ProofTree] | None = None,
    counterexample: np.ndarray | None = None,
    spec_path: str | os.PathLike | None = None,
    options: object = None,
    lemmas: Iterable[object] = (),
) -> str:
    """Write a certificate to ``path`` and return the path.

    Args:
        path: where to write the JSON document.
        graph: the IR graph the proof was made on (a chain of ops ending in ReLU/affine).
        model_path_or_bytes: the ONNX model file (path) or its bytes.
        subproblems: the normalised property: boxes and unsafe polytopes.
        claim: "holds" / "violated" (or a ``Verdict``).
        tree: for "holds", one proof tree per subproblem (or one tree if there is one).
        counterexample: for "violated", the violating input.
        spec_path: the VNN-LIB file the subproblems came from, if any.
        options: the run's options (recorded, not relied on).
        lemmas: symbolic lemmas relied on (objects or dicts with ``name``,
            ``statement`` and optionally ``smt2``), listed as assumptions.

    Raises:
        CertificateError: the proof cannot be expressed, or the checker's lowering of the
            model disagrees with ``graph``.
    """
    claim = str(getattr(claim, "value", claim)).lower()
    if claim not in ("holds", "violated"):
        raise CertificateError(f"claim must be 'holds' or 'violated', not {claim!r}")
    if isinstance(model_path_or_bytes, (bytes, bytearray)):
        model_bytes, model_path = bytes(model_path_or_bytes), None
    else:
        model_path = os.path.abspath(os.fspath(model_path_or_bytes))
        with open(model_path, "rb") as handle:
            model_bytes = handle.read()
    try:
        net = read_model(model_bytes)
    except Exception as exc:  # the checker's Malformed: it cannot read this model
        raise CertificateError(f"the certificate checker cannot read this model: {exc}") from exc
    relus = _relu_map(graph, net)
    subproblems = list(subproblems)
    if not subproblems:
        raise CertificateError("no subproblems")
    _cross_check(graph, net, subproblems)

    subs = [_subproblem(s, net) for s in subproblems]
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "claim": claim,
        "semantics": "real",
        "model": {
            "path": model_path,
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "network_sha256": network_hash(net),
            "input_size": net.input_size,
            "output_size": net.output_size,
        },
        "spec": None,
        "subproblems": subs,
        "subproblems_sha256": hashlib.sha256(canonical_json(subs)).hexdigest(),
        "assumptions": [],
        "tool": {"name": TOOL, "version": _version(), "options": _jsonable(options)},
    }
    if spec_path is not None:
        spec_path = os.path.abspath(os.fspath(spec_path))
        with open(spec_path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        doc["spec"] = {"path": spec_path, "sha256": digest}
    for lemma in lemmas:
        doc["assumptions"].append(_lemma(lemma))
    if claim == "violated":
        if counterexample is None:
            raise CertificateError("a 'violated' certificate needs the counterexample")
        x = np.asarray(counterexample, dtype=np.float64).reshape(-1)
        if x.size != net.input_size or not np.isfinite(x).all():
            raise CertificateError("counterexample has the wrong size or is not finite")
        doc["evidence"] = {"counterexample": {"input": hex_list(x)}}
    else:
        if tree is None:
            raise CertificateError("a 'holds' certificate needs a proof tree per subproblem")
        trees = [tree] if isinstance(tree, (Closed, InputSplit, ReluSplit)) else list(tree)
        if len(trees) != len(subproblems):
            raise CertificateError(f"{len(trees)} proof trees for {len(subproblems)} subproblems")
        external: dict[str, str] = {}
        lowered = []
        for entry, sub in zip(trees, subproblems, strict=False):
            if entry is None:
                raise CertificateError("a subproblem has no proof tree")
            if isinstance(entry, (Closed, InputSplit, ReluSplit)):
                lowered.append(_lower_tree(entry, relus, net, external, len(sub.unsafe)))
                continue
            parts = []  # a sequence of (polytope indices, tree)
            for indices, part in entry:
                indices = [int(i) for i in indices]
                lowered_part = _lower_tree(part, relus, net, external, len(indices))
                parts.append({"polytopes": indices, "tree": lowered_part})
            lowered.append({"parts": parts})
        # children intersect their pre-activation bounds with their parent's (as branch
        # and bound does when it reuses intermediate bounds)
        doc["evidence"] = {"trees": lowered, "inherit": True}
        for name, statement in sorted(external.items()):
            doc["assumptions"].append({"kind": "solver", "name": name, "statement": statement})
    out = os.fspath(path)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, separators=(",", ":"))
    return out


def encode_array(array: np.ndarray) -> Any:
    """Encode a float64 vector compactly: bits when at least half the entries are 0 or 1
    (the others listed apart), else base64 float64 (``proofs/FORMAT.md`` section 3)."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    if not np.isfinite(flat).all():
        raise CertificateError("cannot encode NaN or Inf in a certificate")
    binary = (flat == 0.0) | (flat == 1.0)
    if 2 * int((~binary).sum()) > flat.size:
        return {"f64le": base64.b64encode(flat.astype("<f8").tobytes()).decode("ascii")}
    # Mostly 0 and 1 (the slopes of stable ReLUs): bits, and the other entries apart.
    packed = np.packbits(np.where(binary, flat, 0.0).astype(np.uint8)).tobytes()
    out = {"bits": base64.b64encode(packed).decode("ascii"), "n": int(flat.size)}
    if not binary.all():
        out["at"] = base64.b64encode(np.flatnonzero(~binary).astype("<u4").tobytes()).decode()
        out["f64le"] = base64.b64encode(flat[~binary].astype("<f8").tobytes()).decode()
    return out


def evaluate_network(net: Network, x: np.ndarray) -> np.ndarray:
    """Plain float64 evaluation of the checker's lowering (not rigorous; cross-checks only)."""
    v = np.asarray(x, dtype=np.float64).reshape(-1)
    for layer in net.layers:
        if layer.kind == "affine":
            v = layer.W @ v + layer.b
        elif layer.kind == "add":
            v = v + layer.b
        elif layer.kind == "scale":
            v = v * layer.b
        else:
            v = np.maximum(v, 0.0)
    return v


def _version() -> str:
    try:
        from prover import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


def _relu_map(graph: Graph, net: Network) -> dict[str, int]:
    """IR ReLU input value name -> the checker's ReLU layer ordinal (checked widths)."""
    names = [node.inputs[0] for node in graph.nodes if type(node.op) is ops.Relu]
    widths = [net.layers[p].size for p in net.relu_layers]
    ir_widths = [int(np.prod(graph.shapes[name])) for name in names]
    if ir_widths != widths:
        raise CertificateError(
            f"the IR has ReLU layers of widths {ir_widths}, the checker's lowering {widths}"
        )
    return {name: k for k, name in enumerate(names)}


def _cross_check(graph: Graph, net: Network, subproblems: Sequence[Subproblem]) -> None:
    rng = np.random.default_rng(0)
    box = subproblems[0].box
    lower, upper = box.lower.reshape(-1), box.upper.reshape(-1)
    if lower.size != net.input_size:
        raise CertificateError(f"region has {lower.size} inputs, the model {net.input_size}")
    for t in (np.zeros(lower.size), np.ones(lower.size), *rng.random((3, lower.size))):
        x = lower + t * (upper - lower)
        mine = evaluate_network(net, x)
        theirs = np.asarray(evaluate(graph, x), dtype=np.float64).reshape(-1)
        if mine.shape != theirs.shape or not np.allclose(mine, theirs, rtol=1e-9, atol=1e-9):
            raise CertificateError("the checker's lowering of the model disagrees with the IR")


def _subproblem(sub: Subproblem, net: Network) -> dict:
    lower = sub.box.lower.reshape(-1)
    upper = sub.box.upper.reshape(-1)
    unsafe = []
    for poly in sub.unsafe:
        if poly.C.shape[1] != net.output_size:
            raise CertificateError("unsafe polytope does not fit the model's outputs")
        unsafe.append({"C": [hex_list(row) for row in poly.C], "d": hex_list(poly.d)})
    return {"lower": hex_list(lower), "upper": hex_list(upper), "unsafe": unsafe}


_CLIPPED = (
    "the proof narrows boxes by clipping (BabConfig.clip), which certificates do not "
    "express; prove with a certificate path set (clipping is then off)"
)


def _lower_tree(
    tree: ProofTree, relus: dict[str, int], net: Network, external: dict, n_polys: int
) -> dict:
    root: dict = {}
    stack = [(tree, root)]
    while stack:
        node, out = stack.pop()
        if isinstance(node, (InputSplit, Closed)) and node.clips:
            raise CertificateError(_CLIPPED)
        if isinstance(node, InputSplit):
            out.update(split="input", dim=int(node.dim), value=float.hex(float(node.value)))
            out["below"], out["above"] = {}, {}
            stack += [(node.below, out["below"]), (node.above, out["above"])]
        elif isinstance(node, ReluSplit):
            if node.node not in relus:
                raise CertificateError(f"ReLU split on {node.node!r}, which feeds no ReLU")
            out.update(split="relu", layer=relus[node.node], neuron=int(node.index))
            out["inactive"], out["active"] = {}, {}
            stack += [(node.inactive, out["inactive"]), (node.active, out["active"])]
        elif isinstance(node, Closed):
            out.update(_leaf(node, relus, net, external, n_polys))
        else:
            raise CertificateError(f"not a proof tree node: {type(node).__name__}")
    return root


def _leaf(node: Closed, relus: dict[str, int], net: Network, external: dict, n_polys: int) -> dict:
    rule = node.rule
    if rule.startswith("domain:") and set(rule[7:].split("+")) <= LINEAR_METHODS:
        rule = "linear"  # the linear rule also tries interval bounds on every polytope
    if rule == "linear" and node.evidence.get("betas"):
        name = "external:linear+lp-betas"
        external[name] = (
            "leaves closed by a linear bound with LP (HiGHS) multipliers of the split "
            "constraints, computed by the prover; multipliers not replayed by this checker"
        )
        return {"rule": "assumed", "assumption": name}
    if rule not in CHECKED_RULES:
        name = f"external:{node.rule}"
        external[name] = (
            f"leaves closed by {node.rule!r} ({node.method or 'unspecified engine'}); "
            "the solver's answer is not re-checked"
        )
        return {"rule": "assumed", "assumption": name}
    leaf: dict[str, Any] = {"rule": rule}
    slopes = node.evidence.get("slopes")
    if slopes:
        leaf["slopes"] = _encode_slopes(slopes, relus, net)
    rows = node.evidence.get("rows")
    if rows is not None and len(rows) == n_polys:
        leaf["rows"] = [int(r) for r in rows]
    if node.evidence.get("intermediate") == "slopes":
        leaf["intermediate"] = "slopes"
    return leaf


def _encode_slopes(slopes: dict, relus: dict[str, int], net: Network) -> dict:
    """ReLU input name -> slopes, as the certificate's ``{"k": encoded vector}``."""
    widths = [net.layers[p].size for p in net.relu_layers]
    encoded = {}
    for name, values in slopes.items():
        if name not in relus:
            raise CertificateError(f"slopes given for {name!r}, which feeds no ReLU")
        k = relus[name]
        alpha = np.asarray(values, dtype=np.float64).reshape(-1)
        if alpha.size != widths[k]:
            raise CertificateError(f"{alpha.size} slopes for a ReLU layer of {widths[k]}")
        encoded[str(k)] = encode_array(np.clip(alpha, 0.0, 1.0))
    return encoded


def _lemma(lemma: object) -> dict:
    get = lemma.get if isinstance(lemma, dict) else lambda k, d=None: getattr(lemma, k, d)
    entry = {
        "kind": "lemma",
        "name": str(get("name", "lemma")),
        "statement": str(get("statement", get("claim", ""))),
    }
    smt2 = get("smt2", None)
    if isinstance(smt2, str):
        entry["smt2"] = smt2
    return entry


def _jsonable(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    return str(value)


def certify_result(
    result: Any, graph: Graph, model: object, prop: object, region: object, options: Any
) -> tuple[str, bool, dict]:
    """Write the certificate of a decided ``Result`` and (if ``options.check``) check it.

    Returns ``(path, accepted by the checker, the checker's report as a dict)``.
    """
    from prover.api import normalise

    path = os.fspath(options.certificate)
    model_source = _model_source(model, graph, path)
    spec = getattr(prop, "source", None)
    spec_path = spec if isinstance(spec, str) and os.path.isfile(spec) else None
    write_certificate(
        path,
        graph=graph,
        model_path_or_bytes=model_source,
        subproblems=normalise(graph, prop, region),
        claim=result.verdict,
        tree=result.stats.get("trees"),
        counterexample=result.counterexample,
        spec_path=spec_path,
        options=options,
    )
    return _checked(path, options, model_source, spec_path)


def _checked(path: str, options: Any, model: str, spec: str | None = None):
    """``(path, accepted, report dict)``: the checker's verdict unless ``options.check`` is
    off (then not accepted, empty report)."""
    from proofs.checker import check_certificate

    if not getattr(options, "check", True):
        return path, False, {}
    report = check_certificate(path, model=model, spec=spec)
    return path, report.valid, dataclasses.asdict(report)


def _model_source(model: object, graph: Graph, path: str) -> str:
    """The model file to bind to: ``model`` itself, else its ONNX bytes written beside
    the certificate (``PATH.model.onnx``: the checker reads a file)."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, (bytes, bytearray)):
        data = bytes(model)
    elif graph.origin is not None and graph.origin.onnx_bytes is not None:
        data = graph.origin.onnx_bytes
    else:
        raise CertificateError("no ONNX form of the model to bind the certificate to")
    side = path + ".model.onnx"
    with open(side, "wb") as handle:
        handle.write(data)
    return side


#: What decided a whole-model HOLDS, per property (FORMAT.md section 11), for the report.
WHOLE_MODEL_ENGINES = {
    "valid-probabilities": "softmax identity (symbolic) or output/sum bounds",
    "finite": "interval bounds of every value within float32 limits",
    "lipschitz": "Jacobian interval bounds",
    "monotonic": "Jacobian interval bounds",
}


def whole_model_property(prop: object) -> tuple[str, dict]:
    """The name and exact parameters of a whole-model property (FORMAT.md section 11).

    Raises:
        CertificateError: for a property the format does not name.
    """
    from prover.properties import Finite, Lipschitz, Monotonic, ValidProbabilities

    if isinstance(prop, ValidProbabilities):
        return "valid-probabilities", {"sum_tolerance": float.hex(float(prop.sum_tolerance))}
    if isinstance(prop, Finite):
        return "finite", {}
    if isinstance(prop, Lipschitz):
        return "lipschitz", {"bound": float.hex(float(prop.bound)), "norm": str(prop.norm)}
    if isinstance(prop, Monotonic):
        return "monotonic", {
            "input": int(prop.input),
            "output": int(prop.output),
            "increasing": bool(prop.increasing),
        }
    raise CertificateError(f"no certificate format for the property {type(prop).__name__}")


def write_whole_model_certificate(
    path: str | os.PathLike,
    *,
    model_path: str | os.PathLike,
    prop: object,
    region: Any,
    result: Any,
    options: object = None,
) -> str:
    """Write a whole-model certificate (FORMAT.md section 11) and return its path.

    The claim rests on an ``engine`` assumption (this prover's decision, which the checker
    does not re-derive); the document binds the model file, the property, the region and,
    for VIOLATED, the witness points, and the assumption names their hash.

    Args:
        path: where to write the JSON document.
        model_path: the ONNX model file the result is about.
        prop: the whole-model property (``prover.properties``).
        region: the region as a Box of the model's input shape, or None (all inputs).
        result: the decided Result (HOLDS or VIOLATED).
        options: the run's options (recorded, not relied on).

    Raises:
        CertificateError: an undecided result, an unnamed property, or non-finite numbers.
    """
    claim = str(getattr(result.verdict, "value", result.verdict)).lower()
    if claim not in ("holds", "violated"):
        raise CertificateError(f"claim must be 'holds' or 'violated', not {claim!r}")
    model_path = os.path.abspath(os.fspath(model_path))
    with open(model_path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    name, parameters = whole_model_property(prop)
    box = None
    if region is not None:
        lower, upper = (
            np.asarray(v, dtype=np.float64).reshape(-1) for v in (region.lower, region.upper)
        )
        box = {"lower": _finite_hex(lower, "region"), "upper": _finite_hex(upper, "region")}
    prop_doc = {"name": name, "parameters": parameters, "region": box}
    cex = None
    if claim == "violated":
        pair = result.stats.get("pair")
        points = list(pair) if pair is not None else [result.counterexample]
        if any(p is None for p in points):
            raise CertificateError("a 'violated' certificate needs the counterexample")
        cex = {"inputs": [_finite_hex(p, "counterexample") for p in points]}
    statement = {
        "claim": claim,
        "model_sha256": digest,
        "property": prop_doc,
        "counterexample": cex,
    }
    method = result.method or "unspecified"
    engine = (
        WHOLE_MODEL_ENGINES[name]
        if claim == "holds"
        else "a witness replayed on ONNX Runtime (float32) and confirmed in float64"
    )
    assumption = {
        "kind": "engine",
        "name": f"external:{TOOL}/{method}",
        "statement": f"{engine} ({method}) by {TOOL} {_version()}, not re-derived by the "
        f"checker: {result.reason}; arithmetic: {result.soundness}",
        "statement_sha256": hashlib.sha256(canonical_json(statement)).hexdigest(),
    }
    evidence: dict[str, Any] = {"rule": "assumed", "assumption": assumption["name"]}
    if cex is not None:
        evidence["counterexample"] = cex
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "subject": "whole-model",
        "claim": claim,
        "semantics": "external",
        "model": {"path": model_path, "sha256": digest},
        "property": prop_doc,
        "evidence": evidence,
        "assumptions": [assumption],
        "tool": {"name": TOOL, "version": _version(), "options": _jsonable(options)},
    }
    out = os.fspath(path)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, separators=(",", ":"))
    return out


def _finite_hex(values: object, what: str) -> list[str]:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(array).all():
        raise CertificateError(f"the {what} is not finite: no exact certificate numbers")
    return hex_list(array)


def certify_whole_model(
    result: Any, graph: Graph, model: object, prop: object, region: object, options: Any
) -> tuple[str, bool, dict]:
    """Write the whole-model certificate of a decided result and (if ``options.check``)
    check it. Returns ``(path, accepted by the checker, the checker's report as a dict)``."""
    from prover.properties.common import fit_region

    path = os.fspath(options.certificate)
    model_source = _model_source(model, graph, path)
    write_whole_model_certificate(
        path,
        model_path=model_source,
        prop=prop,
        region=fit_region(graph, region),
        result=result,
        options=options,
    )
    return _checked(path, options, model_source)
