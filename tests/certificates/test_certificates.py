"""Certificates from real proofs and counterexamples: written, then checked independently."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
from certkit import (
    ACAS,
    TEST,
    Closed,
    ReluSplit,
    acas,
    interval_leaf,
    linear_leaf,
    load,
    make_cert,
    needs_bench,
    relu_inputs,
    split_tree,
)
from onnx import TensorProto, helper, numpy_helper

from proofs.checker import check_certificate, main
from proofs.writer import write_certificate
from prover.errors import CertificateError
from prover.spec import Box, Polytope, Subproblem

pytestmark = needs_bench


def test_interval_split_tree_on_test_small(tmp_path):
    graph, subs = load(TEST / "test_small.onnx", TEST / "test_small.vnnlib")
    tree = split_tree(graph, subs[0], interval_leaf(graph, subs[0]), force=3)
    make_cert(tmp_path / "c.json", TEST / "test_small.onnx", TEST / "test_small.vnnlib", [tree])
    report = check_certificate(str(tmp_path / "c.json"))
    assert report.valid, report.reason
    assert any("8 leaves checked (interval 8)" in line for line in report.checked)
    assert any("spec" in line and "covered" not in line for line in report.checked)


@pytest.mark.parametrize(
    "model, spec",
    [
        (TEST / "test_unsat.onnx", TEST / "test_prop.vnnlib"),
        (acas(3, 3), ACAS / "vnnlib" / "prop_4.vnnlib"),
        (TEST / "test_tiny.onnx", TEST / "test_tiny.vnnlib"),
        (TEST / "test_nano.onnx", TEST / "test_nano.vnnlib"),
    ],
)
def test_crown_leaves_from_the_linear_domain_are_accepted(tmp_path, model, spec):
    graph, subs = load(model, spec)
    trees = [split_tree(graph, sub, linear_leaf(graph, sub), max_depth=2) for sub in subs]
    make_cert(tmp_path / "c.json", model, spec, trees)
    report = check_certificate(str(tmp_path / "c.json"))
    assert report.valid, report.reason


def test_alpha_crown_slopes_are_replayed(tmp_path):
    model, spec = TEST / "test_unsat.onnx", TEST / "test_prop.vnnlib"
    graph, subs = load(model, spec)
    tree = linear_leaf(graph, subs[0], alpha_steps=3)(
        subs[0].box.lower.reshape(-1), subs[0].box.upper.reshape(-1)
    )
    assert tree is not None and len(tree.evidence["slopes"]) == 6
    doc = make_cert(tmp_path / "c.json", model, spec, [tree])
    assert set(doc["evidence"]["trees"][0]["slopes"]) == {str(k) for k in range(6)}
    assert check_certificate(str(tmp_path / "c.json")).valid
    # slopes outside [0, 1] are not valid relaxations
    doc["evidence"]["trees"][0]["slopes"]["0"] = {"f64le": "AAAAAAAAAEA="}  # one 2.0
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    assert not check_certificate(str(tmp_path / "bad.json")).valid


def test_relu_split_tree(tmp_path):
    # test_small: y = 6 relu(2 relu(x + 1.5) * 2 + 2.5) + 3.5 (both neurons equal); on
    # x in [-3, 1] the first layer's neurons are unstable and y <= 78.5 < 100.
    model = TEST / "test_small.onnx"
    graph, _ = load(model, TEST / "test_small.vnnlib")
    sub = Subproblem(Box([-3.0], [1.0]), (Polytope(np.array([[-1.0]]), np.array([-100.0])),))
    first, second = relu_inputs(graph)

    def check(tree):
        write_certificate(
            tmp_path / "c.json", graph=graph, model_path_or_bytes=str(model), subproblems=[sub],
            claim="holds", tree=tree,
        )  # fmt: skip
        return check_certificate(str(tmp_path / "c.json"))

    leaf = Closed("linear")
    tree = ReluSplit(first, 0, ReluSplit(second, 1, Closed("interval"), leaf), leaf)
    report = check(tree)
    assert report.valid, report.reason
    assert any("spec" in t for t in report.trusted)  # no spec file: stated as is
    # repeating the split: the inner 'inactive' branch is z = 0 (x = -1.5), not empty
    tree = ReluSplit(first, 0, leaf, ReluSplit(first, 0, Closed("infeasible"), leaf))
    report = check(tree)
    assert not report.valid and "infeasible" in report.reason
    # but z <= 0 and z >= 0 with z >= 0.5 everywhere is empty: x in [-1, 1] keeps it active
    sub = Subproblem(Box([-1.0], [1.0]), sub.unsafe)
    assert check(ReluSplit(first, 0, Closed("infeasible"), leaf)).valid


def find_violation(model, sub, rng, n=20000):
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    lower, upper = sub.box.lower.reshape(-1), sub.box.upper.reshape(-1)
    xs = (lower + rng.random((n, lower.size)) * (upper - lower)).astype(np.float32)
    xs = np.clip(xs, lower.astype(np.float32), upper.astype(np.float32))
    xs = xs[np.all((xs >= lower) & (xs <= upper), axis=1)]
    for x in xs:
        y = session.run(None, {inp.name: x.reshape(inp.shape)})[0].reshape(-1)
        if any(np.all(p.C @ y <= p.d - 1e-6) for p in sub.unsafe):
            return x.astype(np.float64)
    return None


def test_counterexample_certificate_for_test_sat(tmp_path):
    model, spec = TEST / "test_sat.onnx", TEST / "test_prop.vnnlib"
    graph, subs = load(model, spec)
    x = find_violation(model, subs[0], np.random.default_rng(0))
    assert x is not None
    make_cert(tmp_path / "c.json", model, spec, counterexample=x, claim="violated")
    report = check_certificate(str(tmp_path / "c.json"))
    assert report.valid, report.reason
    # the same point does not violate the network of test_unsat (the property holds there)
    make_cert(
        tmp_path / "u.json", TEST / "test_unsat.onnx", spec, counterexample=x, claim="violated"
    )
    assert not check_certificate(str(tmp_path / "u.json")).valid


def two_input_sum_model(path):
    """y = x0 * 1 + x1 * 2**-30: at x = (2**24, 1) float64 rounds y to exactly 2**24."""
    w = numpy_helper.from_array(np.array([[1.0, 2.0**-30]], dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)],
        "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path.write_bytes(model.SerializeToString())


def test_counterexamples_are_checked_in_exact_arithmetic(tmp_path):
    from importers.onnx import import_onnx

    model = tmp_path / "sum.onnx"
    two_input_sum_model(model)
    graph = import_onnx(str(model))
    x = np.array([2.0**24, 1.0])
    assert float(np.array([1.0, 2.0**-30]) @ x) == 2.0**24  # float64 says y = 2**24
    unsafe = (Polytope(np.array([[1.0]]), np.array([2.0**24])),)  # y <= 2**24
    sub = Subproblem(Box(x, x), unsafe)
    write_certificate(
        tmp_path / "c.json", graph=graph, model_path_or_bytes=str(model), subproblems=[sub],
        claim="violated", counterexample=x,
    )  # fmt: skip
    report = check_certificate(str(tmp_path / "c.json"))
    assert not report.valid and "exact" in report.reason  # the real output is 2**24 + 2**-30
    sub = Subproblem(Box(x, x), (Polytope(np.array([[-1.0]]), np.array([-(2.0**24)])),))
    write_certificate(
        tmp_path / "d.json", graph=graph, model_path_or_bytes=str(model), subproblems=[sub],
        claim="violated", counterexample=x,
    )  # fmt: skip
    assert check_certificate(str(tmp_path / "d.json")).valid  # y >= 2**24 does hold


def test_cli_exit_codes_and_messages(tmp_path, capsys):
    model, spec = TEST / "test_tiny.onnx", TEST / "test_tiny.vnnlib"
    make_cert(tmp_path / "c.json", model, spec, [Closed("interval")])
    cert = str(tmp_path / "c.json")
    assert main([cert, "--model", str(model), "--spec", str(spec)]) == 0
    assert "VALID" in capsys.readouterr().out
    assert main([cert, "--model", str(TEST / "test_small.onnx")]) == 1
    assert "different model file" in capsys.readouterr().out
    other = tmp_path / "other.vnnlib"
    other.write_text(spec.read_text().replace("100", "50"))
    assert main([cert, "--spec", str(other)]) == 1
    assert "different spec file" in capsys.readouterr().out
    (tmp_path / "t.json").write_text((tmp_path / "c.json").read_text()[:200])
    assert main([str(tmp_path / "t.json"), "--model", str(model)]) == 2
    assert "MALFORMED" in capsys.readouterr().out
    done = subprocess.run(
        [sys.executable, "-m", "proofs.checker", cert], capture_output=True, text=True
    )
    assert done.returncode == 0 and "checked:" in done.stdout


def test_assumptions_are_listed_as_trusted_or_rechecked(tmp_path):
    model, spec = TEST / "test_tiny.onnx", TEST / "test_tiny.vnnlib"
    doc = make_cert(tmp_path / "c.json", model, spec, [Closed("milp", {}, "highs")])
    report = check_certificate(str(tmp_path / "c.json"))
    assert report.valid
    assert any("milp" in t for t in report.trusted)
    assert doc["evidence"]["trees"][0]["rule"] == "assumed"
    z3 = pytest.importorskip("z3")
    assert z3 is not None
    good = "(declare-const x Real)(assert (< (* x x) 0.0))"  # negation of x*x >= 0
    bad = "(declare-const x Real)(assert (< x 0.0))"  # negation of x >= 0: satisfiable
    for script, valid in ((good, True), (bad, False)):
        doc["assumptions"].append(
            {"kind": "lemma", "name": "sq", "statement": "x*x >= 0", "smt2": script}
        )
        (tmp_path / "l.json").write_text(json.dumps(doc))
        report = check_certificate(str(tmp_path / "l.json"))
        assert report.valid is valid, report.reason
        doc["assumptions"].pop()


def test_writer_refuses_what_it_cannot_certify(tmp_path):
    model, spec = TEST / "test_tiny.onnx", TEST / "test_tiny.vnnlib"
    with pytest.raises(CertificateError):
        make_cert(tmp_path / "c.json", model, spec, [Closed("interval")] * 2)
    with pytest.raises(CertificateError):
        make_cert(tmp_path / "c.json", model, spec, claim="maybe")
    with pytest.raises(CertificateError):
        make_cert(tmp_path / "c.json", model, spec, claim="violated")
    graph, _ = load(TEST / "test_small.onnx", TEST / "test_small.vnnlib")
    with pytest.raises(CertificateError):  # the IR of another network
        make_cert(tmp_path / "c.json", model, spec, [Closed("interval")], graph=graph)


def test_prove_writes_a_checked_certificate(tmp_path):
    from importers.vnnlib import VNNLib
    from prover.api import prove

    model, spec = TEST / "test_small.onnx", TEST / "test_small.vnnlib"
    result = prove(str(model), VNNLib(str(spec)), certificate=tmp_path / "p.json", timeout=30)
    assert result.verdict.value == "holds"
    assert result.checked
    assert main([str(tmp_path / "p.json"), "--spec", str(spec)]) == 0


def test_parts_prove_different_polytopes_with_different_trees(tmp_path):
    model = TEST / "test_small.onnx"
    graph, _ = load(model, TEST / "test_small.vnnlib")
    high = Polytope(np.array([[-1.0]]), np.array([-100.0]))  # y >= 100 (y <= 78.5)
    low = Polytope(np.array([[1.0]]), np.array([-1.0]))  # y <= -1 (y >= 3.5)
    sub = Subproblem(Box([-3.0], [1.0]), (high, low))
    first = relu_inputs(graph)[0]

    def check(entry):
        write_certificate(
            tmp_path / "c.json", graph=graph, model_path_or_bytes=str(model), subproblems=[sub],
            claim="holds", tree=[entry],
        )  # fmt: skip
        return check_certificate(str(tmp_path / "c.json"))

    split = ReluSplit(first, 0, Closed("linear"), Closed("linear"))
    assert check([((0,), split), ((1,), Closed("interval"))]).valid
    report = check([((0,), split)])  # polytope 1 left unproved
    assert not report.valid and "unproved" in report.reason
