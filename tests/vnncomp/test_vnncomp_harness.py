"""The benchmark harness (benchmarks/vnncomp.py) and the competition scripts."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path("/work/shared/benchmarks")
TEST = SHARED / "vnncomp" / "test"
SCRIPTS = REPO / "benchmarks" / "vnncomp"

pytestmark = pytest.mark.skipif(not TEST.exists(), reason="shared benchmarks not available")


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("vnncomp_harness", REPO / "benchmarks/vnncomp.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_samples_are_read_from_peers_md(harness) -> None:
    text = (SHARED / "peers.md").read_text()
    acas = harness.table_pairs(text, harness.SAMPLES["acasxu30"])
    mnist = harness.table_pairs(text, harness.SAMPLES["mnist10"])
    assert len(acas) == 30 and len(mnist) == 10
    assert all(o.startswith("ACASXU") for o, _ in acas)
    assert all(o.startswith("mnist") for o, _ in mnist)
    args = harness.parse_args(
        ["--benchmark", str(SHARED / "vnncomp/acasxu"), "--sample", "acasxu30"]
    )
    chosen = harness.choose(args, harness.load_instances(Path(args.benchmark)))
    assert [(Path(i.onnx).name, Path(i.vnnlib).name) for i in chosen] == acas
    expected_in_table = {(r[0], r[1]): r[2] for r in (
        [c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
        if line.startswith("| ACASXU"))}  # fmt: skip
    assert all(i.expected == expected_in_table[(Path(i.onnx).name, Path(i.vnnlib).name)]
               for i in chosen)  # fmt: skip


@pytest.mark.parametrize("sample", ["acasxu30", "mnist10"])
def test_reference_columns_add_up_to_the_totals_of_peers_md(harness, sample) -> None:
    text = (SHARED / "peers.md").read_text()
    section = harness.SAMPLES[sample]
    assert harness.sample_timeout(text, section) == 60.0
    benchmark = SHARED / "vnncomp" / ("acasxu" if sample == "acasxu30" else "mnist_fc")
    instances = harness.select(harness.load_instances(benchmark),
                               harness.table_pairs(text, section), sample)  # fmt: skip
    columns = harness.reference(text, section, instances)
    # the "**total**" row under the same heading: "| **total** | | | 20 solved | 780 | ..."
    block = text[text.index(section) :]
    total = next(line for line in block.splitlines() if line.startswith("| **total**"))
    cells = [c.strip() for c in total.strip("|").split("|")][3:]
    assert len(columns) == len(cells) // 2
    for k, outcomes in enumerate(columns.values()):
        counts = harness.summary(outcomes)
        assert counts["solved"] == int(cells[2 * k].split()[0])
        assert abs(counts["total s"] - float(cells[2 * k + 1])) <= 1.0
        assert counts["WRONG"] == 0


def test_instances_file_and_first_n(harness, tmp_path) -> None:
    listing = tmp_path / "some.csv"
    listing.write_text("test_sat.onnx,test_prop.vnnlib\ntest_nano.onnx,test_nano.vnnlib\n")
    args = harness.parse_args(["--benchmark", str(TEST), "--instances-file", str(listing)])
    chosen = harness.choose(args, harness.load_instances(TEST))
    assert [(i.onnx, i.expected) for i in chosen] == [("test_sat.onnx", "sat"),
                                                      ("test_nano.onnx", "unsat")]  # fmt: skip
    args = harness.parse_args(["--benchmark", str(TEST), "--instances", "2"])
    assert len(harness.choose(args, harness.load_instances(TEST))) == 2
    listing.write_text("test_nope.onnx,test_prop.vnnlib\n")
    args = harness.parse_args(["--benchmark", str(TEST), "--instances-file", str(listing)])
    with pytest.raises(SystemExit, match="not in instances.csv"):
        harness.choose(args, harness.load_instances(TEST))


def test_wrong_answers_are_flagged(harness) -> None:
    assert harness.judge(harness.Outcome("sat", 1.0), "unsat").wrong
    assert harness.judge(harness.Outcome("unsat", 1.0), "sat").wrong
    assert not harness.judge(harness.Outcome("unknown", 1.0), "sat").wrong
    assert not harness.judge(harness.Outcome("sat", 1.0), "").wrong
    counts = harness.summary(
        [harness.Outcome("sat", 1.0, wrong=True), harness.Outcome("unsat", 3.0)]
    )
    assert counts["WRONG"] == 1 and counts["solved"] == 1 and counts["violated"] == 0
    assert counts["total s"] == 4.0 and counts["median s"] == 2.0


def test_bad_counterexamples_are_caught(harness) -> None:
    session = ort.InferenceSession(str(TEST / "test_nano.onnx"), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    x = np.array([0.0])
    shape = [d if isinstance(d, int) else 1 for d in feed.shape]
    y = np.asarray(session.run(None, {feed.name: x.astype(np.float32).reshape(shape)})[0],
                   dtype=np.float64).reshape(-1)  # fmt: skip
    check = harness.check_counterexample
    assert "differs" in check(TEST / "test_nano.onnx", TEST / "test_nano.vnnlib", x, y + 1.0)
    assert "does not violate" in check(TEST / "test_nano.onnx", TEST / "test_nano.vnnlib", x, y)


def test_one_instance_with_a_fake_peer(harness, tmp_path, capsys) -> None:
    fake = tmp_path / "peers" / "marabou" / "bin" / "Marabou"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'Engine: something'\necho sat\n")  # a wrong answer
    fake.chmod(0o755)
    output = tmp_path / "results.csv"
    peers = str(tmp_path / "peers")
    status = harness.main(["--benchmark", str(TEST), "--instances", "1", "--peer", "marabou",
                           "--peer-dir", peers, "--output", str(output)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "test_nano test_nano" in printed and "WRONG sat" in printed
    (row,) = list(csv.DictReader(output.open()))
    assert row["expected"] == "unsat" and row["marabou_result"] == "sat"
    assert row["marabou_wrong"] == "1"
    assert row["result"] in ("unsat", "unknown", "timeout")  # never a wrong answer of ours
    assert row["wrong"] == "0" and status == 0


def _script(name: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name), *args], capture_output=True, text=True,
                          timeout=120, **kwargs)  # fmt: skip


def test_competition_scripts(tmp_path) -> None:
    onnx, vnnlib = str(TEST / "test_nano.onnx"), str(TEST / "test_nano.vnnlib")
    assert _script("prepare_instance.sh", "v1", "test", onnx, vnnlib).returncode == 0
    missing = _script("prepare_instance.sh", "v1", "test", onnx, str(tmp_path / "x.vnnlib"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    assert _script("prepare_instance.sh", "v2", "test", onnx, vnnlib).returncode == 1
    assert _script("install_tool.sh", "v0").returncode == 1  # refuses before installing
    out = tmp_path / "result.txt"
    ran = _script("run_instance.sh", "v1", "test", onnx, vnnlib, str(out), "60")
    assert ran.returncode == 0, ran.stderr
    assert out.read_text() == "unsat\n"
    assert _script("run_instance.sh", "v1", "test", onnx).returncode == 1
