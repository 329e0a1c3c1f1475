"""The `prover` command: human and JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from prover.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "acasxu"
NET = EXAMPLES / "ACASXU_run2a_1_1_batch_2000.onnx"


def tiny_model(path: Path, weight: np.ndarray, op: str = "Relu") -> Path:
    n_out, n_in = weight.shape
    nodes = [
        helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1),
        helper.make_node(op, ["h"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        [
            numpy_helper.from_array(weight.astype(np.float32), "W"),
            numpy_helper.from_array(np.zeros(n_out, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_prove_holds_and_json(tmp_path: Path, capsys) -> None:
    model = tiny_model(tmp_path / "m.onnx", np.array([[1.0, -1.0], [0.5, 0.5]]))
    code, out, _ = run(
        capsys,
        "prove",
        str(model),
        "--lower",
        "0,0",
        "--upper",
        "1,1",
        "--output-upper",
        "3",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "holds"
    assert data["bounds"] is not None
    assert data["proof_leaves"] == 1  # closed by the cascade: one leaf


def test_prove_violated_prints_counterexample(tmp_path: Path, capsys) -> None:
    model = tiny_model(tmp_path / "m.onnx", np.array([[1.0, -1.0], [0.5, 0.5]]))
    code, out, _ = run(
        capsys, "prove", str(model), "--lower", "0,0", "--upper", "1,1", "--output-upper", "0.5"
    )
    assert code == 1
    assert "VIOLATED" in out and "counterexample" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["prove", "{missing}", "--lower", "0", "--upper", "1", "--output-upper", "1"], "missing"),
        (
            ["prove", "{model}", "--lower", "1,1", "--upper", "0,0", "--output-upper", "1"],
            "inverted",
        ),
        (["prove", "{model}", "--center", "0,0", "--eps", "-1", "--robust", "0"], "eps"),
        (["prove", "{model}", "--center", "0,0,0", "--eps", "0.1", "--robust", "0"], "inputs"),
        (
            ["prove", "{model}", "--center", "0,0", "--eps", "0.1", "--robust", "7"],
            "does not exist",
        ),
        (["prove", "{truncated}", "--center", "0,0", "--eps", "0.1", "--robust", "0"], ""),
        (["bounds", "{model}"], "region"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, argv, message) -> None:
    model = tiny_model(tmp_path / "m.onnx", np.array([[1.0, -1.0], [0.5, 0.5]]))
    truncated = tmp_path / "t.onnx"
    truncated.write_bytes(model.read_bytes()[:40])
    names = {"model": model, "missing": tmp_path / "missing.onnx", "truncated": truncated}
    code, out, err = run(capsys, *(a.format(**names) for a in argv))
    assert code == 2
    assert err.startswith("prover: error:") and err.count("\n") == 1
    assert "Traceback" not in err
    assert message.lower() in err.lower()


def test_bounds_and_inspect(tmp_path: Path, capsys) -> None:
    model = tiny_model(tmp_path / "m.onnx", np.array([[1.0, -1.0], [0.5, 0.5]]))
    code, out, _ = run(capsys, "bounds", str(model), "--lower", "0,0", "--upper", "1,1", "--json")
    data = json.loads(out)
    assert code == 0
    np.testing.assert_allclose(data["lower"], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(data["upper"], [1.0, 1.0], atol=1e-12)
    code, out, _ = run(capsys, "inspect", str(model), "--json")
    report = json.loads(out)
    assert code == 0 and report["parameters"] == 6 and report["input_shape"] == [2]
    assert all(node["support"]["interval"] for node in report["nodes"])


def test_inspect_names_an_unsupported_node(tmp_path: Path, capsys) -> None:
    model = tiny_model(tmp_path / "m.onnx", np.array([[1.0, -1.0]]), op="Erf")
    code, out, _ = run(capsys, "inspect", str(model))
    assert code == 0 and "Erf" in out


def test_python_dash_m_prover_runs_the_main_job() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "prover",
            "prove",
            str(NET),
            "--vnnlib",
            str(EXAMPLES / "prop_1.vnnlib"),
            "--timeout",
            "100",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "holds"
