"""Whole-model certificates (proofs/FORMAT.md section 11): written by ``prove``, checked
by the independent checker, which binds the model file, the property, the region and the
witness, and reports that the claim rests on the prover's decision (an assumption)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from proofs.checker import check_certificate, main
from prover.api import prove
from prover.properties import Finite, Lipschitz, Monotonic, ValidProbabilities
from prover.result import Verdict
from prover.spec.regions import Box

W = np.array([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]], dtype=np.float32)
B = np.array([0.5, -0.25], dtype=np.float32)
REGION = Box(-np.ones(3), np.ones(3))


def _model(final: str, weight: np.ndarray = W) -> bytes:
    """x (1, 3) -> Gemm (2 outputs) -> ``final`` (Softmax or Identity) -> y (1, 2)."""
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["z"], transB=1),
        helper.make_node(final, ["z"], ["y"], **({"axis": 1} if final == "Softmax" else {})),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(B, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _certify(tmp_path: Path, final: str, prop, region=REGION) -> tuple[Path, Path, object]:
    model = tmp_path / f"{final}.onnx"
    model.write_bytes(_model(final))
    cert = tmp_path / f"{final}.cert.json"
    result = prove(str(model), prop, region, certificate=str(cert), timeout=30)
    return model, cert, result


@pytest.fixture(scope="module")
def softmax_cert(tmp_path_factory) -> tuple[Path, Path, object]:
    return _certify(tmp_path_factory.mktemp("vp"), "Softmax", ValidProbabilities())


@pytest.fixture(scope="module")
def lipschitz_cert(tmp_path_factory) -> tuple[Path, Path, object]:
    # ||W||_inf = 3.5: the linear model is 3.5-Lipschitz in the inf-norm, not 3-Lipschitz
    return _certify(tmp_path_factory.mktemp("lip"), "Identity", Lipschitz(4.0))


def _assert_valid_with_assumption(cert: Path, model: Path) -> None:
    report = check_certificate(str(cert), model=str(model))
    assert report.valid and report.exit_code == 0, report.reason
    name = json.loads(cert.read_text())["evidence"]["assumption"]
    assert name.startswith("external:certnn-prover/")
    assert any(name in line and "rests entirely on" in line for line in report.trusted)
    assert any(line.startswith("engine") and name in line for line in report.trusted)
    assert any("SHA-256" in line for line in report.checked)


def test_valid_probabilities_holds_with_a_checked_certificate(softmax_cert):
    model, cert, result = softmax_cert
    assert result.verdict is Verdict.HOLDS and result.checked
    assert result.certificate == str(cert)
    doc = json.loads(cert.read_text())
    assert doc["subject"] == "whole-model" and doc["claim"] == "holds"
    assert doc["property"]["name"] == "valid-probabilities"
    assert float.fromhex(doc["property"]["parameters"]["sum_tolerance"]) == 1e-5
    assert doc["property"]["region"]["lower"] == [float.hex(-1.0)] * 3
    _assert_valid_with_assumption(cert, model)


def test_lipschitz_holds_with_a_checked_certificate(lipschitz_cert):
    model, cert, result = lipschitz_cert
    assert result.verdict is Verdict.HOLDS and result.checked
    doc = json.loads(cert.read_text())
    assert doc["property"] == {
        "name": "lipschitz",
        "parameters": {"bound": float.hex(4.0), "norm": "inf"},
        "region": doc["property"]["region"],
    }
    assert "Jacobian" in doc["assumptions"][0]["statement"]
    _assert_valid_with_assumption(cert, model)


def test_the_cli_prints_the_assumption(lipschitz_cert, capsys):
    model, cert, _ = lipschitz_cert
    assert main([str(cert), "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("certificate VALID") and "trusted: the claim 'holds' rests" in out


def test_all_inputs_region_is_null(tmp_path):
    model, cert, result = _certify(tmp_path, "Softmax", ValidProbabilities(), region=None)
    assert result.holds and result.checked
    assert json.loads(cert.read_text())["property"]["region"] is None
    assert "over all inputs" in " ".join(check_certificate(str(cert)).checked)


def test_lipschitz_violated_carries_both_points_in_the_region(tmp_path):
    model, cert, result = _certify(tmp_path, "Identity", Lipschitz(3.0))
    assert result.verdict is Verdict.VIOLATED and result.checked
    doc = json.loads(cert.read_text())
    points = [
        np.array([float.fromhex(v) for v in p]) for p in doc["evidence"]["counterexample"]["inputs"]
    ]
    assert len(points) == 2
    for p in points:
        assert np.all(p >= -1) and np.all(p <= 1)
    ratio = np.max(np.abs(W.astype(np.float64) @ (points[1] - points[0])))
    assert ratio > 3.0 * np.max(np.abs(points[1] - points[0]))
    _assert_valid_with_assumption(cert, model)
    # a witness moved outside the region is rejected even with the binding hash recomputed
    doc["evidence"]["counterexample"]["inputs"][0][0] = float.hex(2.0)
    bad = tmp_path / "outside.json"
    bad.write_text(json.dumps(doc))
    report = check_certificate(str(bad), model=str(model))
    assert not report.valid and not report.malformed and "outside the region" in report.reason


def test_monotonic_and_finite_certificates(tmp_path):
    model, cert, result = _certify(tmp_path, "Identity", Monotonic(input=0, output=0))
    assert result.holds and result.checked
    params = json.loads(cert.read_text())["property"]["parameters"]
    assert params == {"input": 0, "output": 0, "increasing": True}
    model, cert, result = _certify(tmp_path, "Softmax", Finite())
    assert result.holds and result.checked
    assert json.loads(cert.read_text())["property"]["parameters"] == {}


def _edit(doc: dict, change: str, model: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The certificate with one ``change``, and the model file to check it against."""
    doc = json.loads(json.dumps(doc))
    prop = doc["property"]
    if change == "parameter":
        key = next(iter(prop["parameters"]))
        value = float.fromhex(prop["parameters"][key])
        prop["parameters"][key] = float.hex(value * 0.5)
    elif change == "claim":
        doc["claim"] = "violated"
        doc["evidence"]["counterexample"] = {"inputs": [[float.hex(0.0)] * 3]}
    elif change == "region":
        prop["region"]["upper"][0] = float.hex(2.0)
    elif change == "all-inputs":
        prop["region"] = None
    elif change == "model":
        other = tmp_path / "other.onnx"
        other.write_bytes(_model("Softmax" if "Softmax" in model.name else "Identity", 2 * W))
        model = other
    elif change == "name":
        prop["name"] = "finite"
        prop["parameters"] = {}
    elif change == "semantics":
        doc["semantics"] = "real"
    elif change == "extra-parameter":
        prop["parameters"]["extra"] = float.hex(1.0)
    elif change == "non-canonical":
        key = next(iter(prop["parameters"]))
        prop["parameters"][key] = "0x1.0p-1"
    elif change == "missing-assumption":
        doc["assumptions"] = []
    elif change == "inverted-region":
        prop["region"]["lower"][0] = float.hex(1.5)
    path = tmp_path / f"{change}.json"
    path.write_text(json.dumps(doc))
    return path, model


INVALID = ["parameter", "claim", "region", "all-inputs", "model", "name"]
MALFORMED = [
    "semantics",
    "extra-parameter",
    "non-canonical",
    "missing-assumption",
    "inverted-region",
]


@pytest.mark.parametrize("which", ["softmax", "lipschitz"])
@pytest.mark.parametrize("change", INVALID + MALFORMED)
def test_mutations_are_rejected(which, change, softmax_cert, lipschitz_cert, tmp_path):
    model, cert, _ = softmax_cert if which == "softmax" else lipschitz_cert
    path, model = _edit(json.loads(cert.read_text()), change, model, tmp_path)
    report = check_certificate(str(path), model=str(model))
    assert not report.valid, change
    assert report.malformed == (change in MALFORMED), (change, report.reason)
    assert "could not process" not in report.reason
    assert main([str(path), "--model", str(model)]) == (2 if change in MALFORMED else 1)


@pytest.mark.parametrize("cut", [1, 10, 100, 0.5, 0.9])
def test_truncated_certificates_are_malformed(cut, lipschitz_cert, tmp_path):
    model, cert, _ = lipschitz_cert
    text = cert.read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: int(cut * len(text)) if cut < 1 else cut])
    report = check_certificate(str(path), model=str(model))
    assert report.malformed and report.exit_code == 2 and "not valid JSON" in report.reason


def test_the_unchanged_copy_is_still_valid(lipschitz_cert, tmp_path):
    model, cert, _ = lipschitz_cert
    path, model = _edit(json.loads(cert.read_text()), "none", model, tmp_path)
    assert check_certificate(str(path), model=str(model)).valid
