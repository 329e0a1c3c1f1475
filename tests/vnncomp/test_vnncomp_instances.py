"""End to end on the competition's smoke-test instances (known verdicts in expected.csv).

Every ``sat`` answer is checked independently: the written X is run on ONNX Runtime here,
the written Y must be its output, and the pair must satisfy the VNN-LIB formula.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from importers.vnnlib import VNNLib
from prover import vnncomp

ROOT = Path("/work/shared/benchmarks/vnncomp/test")
ROWS = list(csv.DictReader((ROOT / "expected.csv").open())) if ROOT.exists() else []

pytestmark = pytest.mark.skipif(not ROWS, reason="shared benchmarks not available")


def check_counterexample(onnx_path: Path, vnnlib_path: Path, text: str) -> None:
    """The written counterexample is ONNX Runtime's behaviour and violates the property."""
    keyword, x, y = vnncomp.read_result(text)
    assert keyword == "sat"
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in feed.shape]
    dtype = np.float64 if feed.type == "tensor(double)" else np.float32
    assert np.array_equal(x.astype(dtype).astype(np.float64), x)  # exactly the input run
    (ort_y,) = session.run(None, {feed.name: x.astype(dtype).reshape(shape)})[:1]
    assert np.array_equal(np.asarray(ort_y, dtype=np.float64).reshape(-1), y)
    assert VNNLib(vnnlib_path).violated_at(x, y)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['onnx']}-{r['vnnlib']}")
def test_known_verdicts(row, tmp_path) -> None:
    onnx_path, vnnlib_path = ROOT / row["onnx"], ROOT / row["vnnlib"]
    out = tmp_path / "result.txt"
    keyword = vnncomp.run_instance(
        onnx_path, vnnlib_path, float(row["timeout"]), out, started=time.monotonic()
    )
    assert keyword == row["verdict"]
    if keyword == "sat":
        check_counterexample(onnx_path, vnnlib_path, out.read_text())


def test_command_line_writes_the_file_and_keeps_stdout_clean(tmp_path) -> None:
    out = tmp_path / "result.txt"
    completed = subprocess.run(
        [sys.executable, "-m", "prover", "vnncomp", str(ROOT / "test_sat.onnx"),
         str(ROOT / "test_prop.vnnlib"), "--timeout", "60", "--results-file", str(out),
         "--hard-exit"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    check_counterexample(ROOT / "test_sat.onnx", ROOT / "test_prop.vnnlib", out.read_text())


def test_command_line_error_is_one_line_on_stderr(tmp_path) -> None:
    out = tmp_path / "result.txt"
    completed = subprocess.run(
        [sys.executable, "-m", "prover", "vnncomp", str(tmp_path / "none.onnx"),
         str(ROOT / "test_prop.vnnlib"), "--timeout", "60", "--results-file", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.read_text() == "error\n"
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert "none.onnx" in completed.stderr and "Traceback" not in completed.stderr


ACAS = Path("/work/shared/benchmarks/vnncomp/acasxu")


@pytest.mark.skipif(not ACAS.exists(), reason="shared benchmarks not available")
def test_a_budget_that_runs_out_is_answered_timeout(tmp_path) -> None:
    # ACAS Xu 4_2 prop 2 needs about 100 s; with 4 s branch and bound stops before the
    # deadline (its next round would overrun) and the answer must say timeout, not unknown.
    out = tmp_path / "result.txt"
    keyword = vnncomp.run_instance(
        ACAS / "onnx" / "ACASXU_run2a_4_2_batch_2000.onnx",
        ACAS / "vnnlib" / "prop_2.vnnlib",
        4.0,
        out,
        started=time.monotonic(),
    )
    assert keyword == "timeout"
    assert out.read_text().strip() == "timeout"


@pytest.mark.skipif(not ACAS.exists(), reason="shared benchmarks not available")
def test_a_search_that_stops_early_for_its_budget_is_a_timeout(monkeypatch) -> None:
    # Branch and bound stops *before* the deadline when its next round would overrun it
    # (it then says timed_out); the result must still say timeout, whatever the reason's
    # wording.
    from prover.api import prove
    from prover.engine import verify
    from prover.result import Verdict

    def stops_early(graph, subproblem, violates, options, deadline):
        reason = "budget spent after 3 closed leaves (9 open, depth 4)"
        verdict = verify.SubproblemVerdict(Verdict.UNKNOWN, "bab", reason=reason, timed_out=True)
        return verdict, None

    monkeypatch.setattr(verify, "solve_subproblem", stops_early)
    result = prove(
        str(ACAS / "onnx" / "ACASXU_run2a_4_2_batch_2000.onnx"),
        VNNLib(ACAS / "vnnlib" / "prop_2.vnnlib"),
        timeout=60.0,
    )
    assert result.verdict is Verdict.UNKNOWN and result.elapsed < 60
    assert result.stats["timeout"] is True


def test_branch_and_bound_says_when_its_time_ran_out() -> None:
    """A search cut short by its deadline is UNKNOWN with ``timed_out``; one that ends is
    not."""
    from importers import load_model
    from prover.engine.bab import branch_and_bound
    from prover.options import Options
    from prover.result import Verdict

    graph = load_model(str(ACAS / "onnx" / "ACASXU_run2a_4_2_batch_2000.onnx"))
    (sub,) = VNNLib(ACAS / "vnnlib" / "prop_2.vnnlib").subproblems(
        graph.input_shape, graph.output_size
    )
    short = branch_and_bound(graph, sub, Options(), time.monotonic() + 0.5)
    assert short.verdict is Verdict.UNKNOWN and short.timed_out
    (easy,) = VNNLib(ACAS / "vnnlib" / "prop_3.vnnlib").subproblems(
        graph.input_shape, graph.output_size
    )
    done = branch_and_bound(graph, easy, Options(), time.monotonic() + 60)
    assert done.verdict is Verdict.HOLDS and not done.timed_out
