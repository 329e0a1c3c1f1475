"""The VNN-COMP runner on tiny synthetic instances: result-file format and failure modes."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import prover.api
from prover import vnncomp
from prover.result import Result, Verdict

SPEC = """; y = x0 + x1 over the unit square
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(assert (>= X_0 0)) (assert (<= X_0 1))
(assert (>= X_1 0.25)) (assert (<= X_1 1))
(assert (>= Y_0 {threshold}))
"""


@pytest.fixture()
def sum_model(tmp_path: Path) -> Path:
    """ONNX model y = x0 + x1 (float32, input shape [1, 2])."""
    weight = numpy_helper.from_array(np.array([[1.0], [1.0]], dtype=np.float32), "W")
    node = helper.make_node("MatMul", ["x", "W"], ["y"])
    graph = helper.make_graph(
        [node],
        "sum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "sum.onnx"
    onnx.save(model, path)
    return path


def _spec(tmp_path: Path, threshold: float) -> Path:
    path = tmp_path / f"spec_{threshold}.vnnlib"
    path.write_text(SPEC.format(threshold=threshold))
    return path


def test_sat_result_file_has_the_competition_format(tmp_path, sum_model) -> None:
    out = tmp_path / "result.txt"
    keyword = vnncomp.run_instance(
        sum_model, _spec(tmp_path, 1.5), 30, out, started=time.monotonic()
    )
    assert keyword == "sat"
    lines = out.read_text().splitlines()
    assert lines[0] == "sat"
    number = r"(-?\d+(\.\d+)?(e[-+]\d+)?)"
    assert re.fullmatch(rf"\(\(X_0 {number}\)", lines[1])
    assert re.fullmatch(rf" \(X_1 {number}\)", lines[2])
    assert re.fullmatch(rf" \(Y_0 {number}\)\)", lines[3])
    assert len(lines) == 4
    x = np.array([float(lines[1].split()[1].rstrip(")")), float(lines[2].split()[1].rstrip(")"))])
    y = float(lines[3].split()[1].rstrip(")"))
    assert 0 <= x[0] <= 1 and 0.25 <= x[1] <= 1
    session = ort.InferenceSession(str(sum_model), providers=["CPUExecutionProvider"])
    (ort_y,) = session.run(None, {"x": x.astype(np.float32).reshape(1, 2)})
    assert float(ort_y.reshape(-1)[0]) == y  # Y is ONNX Runtime's output on the written X
    assert y >= 1.5


def test_unsat_and_the_result_written_to_stdout(tmp_path, sum_model, capsys) -> None:
    assert vnncomp.run_instance(sum_model, _spec(tmp_path, 2.5), 30, started=time.monotonic()) == (
        "unsat"
    )
    assert capsys.readouterr().out == "unsat\n"


def test_errors_are_logged_and_the_file_says_error(tmp_path, sum_model, capfd, caplog) -> None:
    out = tmp_path / "result.txt"
    missing = tmp_path / "missing.onnx"
    assert vnncomp.run_instance(missing, _spec(tmp_path, 1.5), 30, out) == "error"
    assert out.read_text() == "error\n"
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(assert (<= X_0 1)\n")
    assert vnncomp.run_instance(sum_model, bad, 30, out) == "error"
    assert out.read_text() == "error\n"
    assert capfd.readouterr().out == ""  # nothing on stdout; the CLI logs to stderr
    assert "missing.onnx" in caplog.text
    assert "bad.vnnlib:2" in caplog.text and "never closed" in caplog.text


def test_size_mismatch_is_an_error(tmp_path, sum_model) -> None:
    spec = tmp_path / "three.vnnlib"
    spec.write_text(
        "".join(f"(declare-const X_{i} Real)(assert (<= 0 X_{i} 1))\n" for i in range(3))
        + "(declare-const Y_0 Real)(assert (>= Y_0 0))"
    )
    assert vnncomp.run_instance(sum_model, spec, 30, tmp_path / "r.txt") == "error"


def test_budget_spent_before_proving_is_a_timeout(tmp_path, sum_model) -> None:
    out = tmp_path / "result.txt"
    started = time.monotonic() - 100.0
    assert vnncomp.run_instance(sum_model, _spec(tmp_path, 1.5), 10, out, started=started) == (
        "timeout"
    )
    assert out.read_text() == "timeout\n"


def test_a_counterexample_that_does_not_replay_is_never_sat(tmp_path, sum_model, monkeypatch):
    # A (buggy) engine claiming VIOLATED with a point that does not violate: x0 + x1 = 0.5.
    bogus = Result(Verdict.VIOLATED, counterexample=np.array([0.0, 0.5]))
    monkeypatch.setattr(prover.api, "prove", lambda *a, **k: bogus)
    out = tmp_path / "result.txt"
    assert vnncomp.run_instance(sum_model, _spec(tmp_path, 1.5), 30, out) == "unknown"
    assert out.read_text() == "unknown\n"


def test_an_exception_while_proving_is_error(tmp_path, sum_model, monkeypatch, capfd, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(prover.api, "prove", boom)
    assert vnncomp.run_instance(sum_model, _spec(tmp_path, 1.5), 30, tmp_path / "r") == "error"
    assert capfd.readouterr().out == ""
    assert "engine exploded" in caplog.text


def test_undecided_with_time_left_is_unknown(tmp_path, sum_model, monkeypatch) -> None:
    undecided = Result(Verdict.UNKNOWN, reason="no domain closed it", stats={"timeout": False})
    monkeypatch.setattr(prover.api, "prove", lambda *a, **k: undecided)
    assert vnncomp.run_instance(sum_model, _spec(tmp_path, 1.5), 30, tmp_path / "r") == "unknown"
    timed_out = Result(Verdict.UNKNOWN, reason="budget", stats={"timeout": True})
    monkeypatch.setattr(prover.api, "prove", lambda *a, **k: timed_out)
    assert vnncomp.run_instance(sum_model, _spec(tmp_path, 1.5), 30, tmp_path / "r") == "timeout"


def test_counterexample_text_round_trips_exactly() -> None:
    x = np.array([0.1 + 0.2, 1e-300, -0.0, np.float32(0.6)], dtype=np.float64)
    y = np.array([-3.991125645861615, 123456789.125])
    text = "sat\n" + vnncomp.format_counterexample(x, y) + "\n"
    keyword, x2, y2 = vnncomp.read_result(text)
    assert keyword == "sat"
    assert x2.tobytes() == x.tobytes() and y2.tobytes() == y.tobytes()
    assert vnncomp.read_result("unsat\n") == ("unsat", None, None)
    with pytest.raises(ValueError):
        vnncomp.read_result("maybe\n")
    with pytest.raises(ValueError):
        vnncomp.read_result("sat\n((X_0 1.0)\n (X_2 1.0)\n (Y_0 0.0))")


def test_the_watchdog_answers_timeout_when_the_proof_overruns(tmp_path, sum_model, monkeypatch):
    def slow(*args, **kwargs):
        time.sleep(2.0)  # an engine ignoring its budget
        return Result(Verdict.HOLDS)

    exits = []
    monkeypatch.setattr(prover.api, "prove", slow)
    out = tmp_path / "result.txt"
    keyword = vnncomp.run_instance(
        sum_model, _spec(tmp_path, 1.5), 1.3, out, started=time.monotonic(),
        hard_deadline=True, exit_process=exits.append,
    )  # fmt: skip
    assert exits == [0]  # the process would have ended here, before the deadline
    assert keyword == "timeout" and out.read_text() == "timeout\n"  # the late HOLDS is dropped


def test_the_watchdog_stays_quiet_when_the_answer_is_in_time(tmp_path, sum_model) -> None:
    exits = []
    out = tmp_path / "result.txt"
    keyword = vnncomp.run_instance(
        sum_model, _spec(tmp_path, 2.5), 30, out, started=time.monotonic(),
        hard_deadline=True, exit_process=exits.append,
    )  # fmt: skip
    assert keyword == "unsat" and exits == []
