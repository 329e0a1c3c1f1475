"""Run VNN-COMP instances with their known verdicts, optionally beside a peer verifier.

Usage::

    python benchmarks/vnncomp.py --benchmark /work/shared/benchmarks/vnncomp/test
    python benchmarks/vnncomp.py --benchmark .../vnncomp/acasxu --sample acasxu30 \\
        --peer marabou --output acas.csv

Every instance runs in its own process (``python -m prover vnncomp ... --hard-exit``, as
``benchmarks/vnncomp/run_instance.sh`` runs it in the competition), killed after
its timeout plus a grace period, so a crash or a hang is contained. Answers are compared
with ``expected.csv``; a ``sat`` answer counts only if its counterexample replays: the
written X is run on ONNX Runtime here and the pair must satisfy the VNN-LIB formula.
WRONG is a verdict contradicting the expected one, or an invalid counterexample.

Peers (see benchmarks/README.md for their installation, each in a virtual environment of
its own under ``--peer-dir``): ``marabou`` and ``neuralsat``. They run on the same
instances in the same run, one process at a time, and the table shows time ratios.
Times are wall seconds including start-up, as in the competition.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Named samples: the section of peers.md whose table lists the instances.
SAMPLES = {"acasxu30": "ACAS Xu sample", "mnist10": "MNIST-FC sample"}
PEERS = ("marabou", "neuralsat")
DEFAULT_PEER_DIR = Path.home() / ".cache" / "certnn-prover" / "peers"


@dataclass
class Instance:
    """One row of instances.csv, with the expected verdict when known."""

    onnx: str
    vnnlib: str
    timeout: float
    expected: str = ""

    @property
    def name(self) -> str:
        return f"{Path(self.onnx).stem} {Path(self.vnnlib).stem}"


@dataclass
class Outcome:
    """What one tool answered on one instance."""

    result: str
    seconds: float
    note: str = ""
    wrong: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def solved(self) -> bool:
        return self.result in ("sat", "unsat") and not self.wrong


# -- instances ------------------------------------------------------------------------


def load_instances(benchmark: Path) -> list[Instance]:
    """instances.csv (onnx, vnnlib, timeout), joined with expected.csv when present."""
    expected: dict[tuple[str, str], str] = {}
    if (benchmark / "expected.csv").exists():
        with (benchmark / "expected.csv").open() as f:
            for row in csv.DictReader(f):
                expected[(row["onnx"], row["vnnlib"])] = row["verdict"].strip()
    instances = []
    with (benchmark / "instances.csv").open() as f:
        for row in csv.reader(f):
            if len(row) < 3 or not row[0].strip():
                continue
            onnx, vnnlib, timeout = (c.strip() for c in row[:3])
            instances.append(
                Instance(onnx, vnnlib, float(timeout), expected.get((onnx, vnnlib), ""))
            )
    return instances


def table_rows(text: str, section: str | None = None) -> list[dict[str, str]]:
    """The rows of the markdown tables in ``text`` that name an (onnx, vnnlib) instance.

    Each row maps the table's column headings to its cells, plus ``"_pair"``: the
    (onnx, vnnlib) file names of its first two cells. With ``section``, only the table
    under the ``###`` heading that starts with it.
    """
    rows: list[dict] = []
    header: list[str] = []
    inside = section is None
    for line in text.splitlines():
        if line.startswith("#"):
            inside = section is None or line.lstrip("#").strip().startswith(section)
            header = []
            continue
        if not inside or not line.strip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].endswith(".onnx") and cells[1].endswith(".vnnlib"):
            row = dict(zip(header, cells, strict=True)) if len(header) == len(cells) else {}
            row["_pair"] = (cells[0], cells[1])
            rows.append(row)
        elif cells[0] and not set(cells[0]) <= set("-: ") and not cells[0].startswith("**"):
            header = cells
    return rows


def table_pairs(text: str, section: str | None = None) -> list[tuple[str, str]]:
    """(onnx, vnnlib) file names listed by the tables of ``text`` (see :func:`table_rows`)."""
    return [row["_pair"] for row in table_rows(text, section)]


def sample_timeout(text: str, section: str) -> float | None:
    """The timeout named in a sample's heading ("... 60 s timeout)"), if any."""
    for line in text.splitlines():
        if line.startswith("#") and line.lstrip("#").strip().startswith(section):
            found = re.search(r"(\d+(?:\.\d+)?) s timeout", line)
            return float(found.group(1)) if found else None
    return None


def reference(text: str, section: str, instances: list[Instance]) -> dict[str, list[Outcome]]:
    """The peers' outcomes recorded in peers.md for ``instances``: {tool: outcomes}."""
    rows = {row["_pair"]: row for row in table_rows(text, section)}
    tools = [h[: -len(" result")] for h in next(iter(rows.values()), {}) if h.endswith(" result")]
    found: dict[str, list[Outcome]] = {}
    for tool in tools:
        outcomes = []
        for i in instances:
            row = rows[(Path(i.onnx).name, Path(i.vnnlib).name)]
            result = row[f"{tool} result"]
            outcome = Outcome("timeout" if result == "-" else result, float(row[f"{tool} s"]))
            outcomes.append(judge(outcome, i.expected))
        found[f"{tool} (peers.md)"] = outcomes
    return found


def select(instances: list[Instance], pairs: list[tuple[str, str]], what: str) -> list[Instance]:
    """The instances named by (onnx, vnnlib) base names, in the order given."""
    by_name = {(Path(i.onnx).name, Path(i.vnnlib).name): i for i in instances}
    missing = [p for p in pairs if p not in by_name]
    if missing:
        raise SystemExit(f"{what}: {len(missing)} instance(s) not in instances.csv: {missing[:3]}")
    return [by_name[p] for p in pairs]


def choose(args: argparse.Namespace, instances: list[Instance]) -> list[Instance]:
    if args.sample:
        if args.sample not in SAMPLES:
            raise SystemExit(f"unknown sample {args.sample!r}; known: {', '.join(SAMPLES)}")
        text = Path(args.peers_md).read_text()
        pairs = table_pairs(text, SAMPLES[args.sample])
        if not pairs:
            raise SystemExit(f"no table {SAMPLES[args.sample]!r} in {args.peers_md}")
        instances = select(instances, pairs, args.sample)
        if args.timeout is None:
            args.timeout = sample_timeout(text, SAMPLES[args.sample])
    if args.instances_file:
        text = Path(args.instances_file).read_text()
        if "|" in text:
            pairs = table_pairs(text)
        else:
            rows = [r for r in csv.reader(text.splitlines()) if len(r) >= 2]
            pairs = [(Path(r[0].strip()).name, Path(r[1].strip()).name) for r in rows]
        instances = select(instances, pairs, args.instances_file)
    if args.instances is not None:
        instances = instances[: args.instances]
    return instances


# -- running ------------------------------------------------------------------------


def run_process(command: list[str], limit: float, cwd: Path | None = None):
    """Run ``command`` in its own process group, killed after ``limit`` seconds.

    Returns (stdout, stderr, return code or None when killed, wall seconds).
    """
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=limit)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        code = None
    return out, err, code, time.monotonic() - start


def check_counterexample(onnx_path: Path, vnnlib_path: Path, x, y) -> str:
    """'' when (x, ONNX Runtime(x)) violates the property and y matches, else why not."""
    import onnxruntime as ort

    from importers.vnnlib import VNNLib

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in feed.shape]
    dtype = np.float64 if feed.type == "tensor(double)" else np.float32
    ort_y = np.asarray(
        session.run(None, {feed.name: x.astype(dtype).reshape(shape)})[0], dtype=np.float64
    ).reshape(-1)
    if ort_y.shape != y.shape or not np.allclose(ort_y, y, rtol=1e-5, atol=1e-6):
        return "written Y differs from ONNX Runtime's output"
    if not VNNLib(vnnlib_path).violated_at(x, ort_y):
        return "counterexample does not violate the property"
    return ""


def judge(outcome: Outcome, expected: str) -> Outcome:
    if {outcome.result, expected} == {"sat", "unsat"}:
        outcome.wrong = True
        outcome.note = (outcome.note + f"; expected {expected}").lstrip("; ")
    return outcome


def run_ours(instance: Instance, root: Path, timeout: float, args) -> Outcome:
    from prover.vnncomp import read_result

    onnx_path, vnnlib_path = root / instance.onnx, root / instance.vnnlib
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "result.txt"
        command = [args.python, "-m", "prover", "vnncomp", str(onnx_path), str(vnnlib_path),
                   "--timeout", repr(timeout), "--results-file", str(results),
                   "--hard-exit"]  # fmt: skip
        _, err, code, seconds = run_process(command, timeout + args.grace)
        if code is None:
            return Outcome("timeout", seconds, "killed")
        if not results.exists():
            return Outcome("error", seconds, f"no result file (exit {code})")
        try:
            result, x, y = read_result(results.read_text())
        except ValueError as exc:
            return Outcome("error", seconds, f"bad result file: {exc}", wrong=True)
    outcome = Outcome(result, seconds)
    if result in ("error", "unknown"):
        outcome.note = err.strip().splitlines()[-1][:100] if err.strip() else ""
    if result == "sat":
        problem = check_counterexample(onnx_path, vnnlib_path, x, y)
        if problem:
            outcome.wrong, outcome.note = True, problem
    return judge(outcome, instance.expected)


def neuralsat_folder(peer_dir: Path) -> Path:
    found = sorted((peer_dir / "neuralsat").glob("lib/python*/site-packages/src/main.py"))
    if not found:
        raise SystemExit(f"NeuralSAT not found under {peer_dir / 'neuralsat'} (see README)")
    return found[0].parent


def run_peer(peer: str, instance: Instance, root: Path, timeout: float, args) -> Outcome:
    onnx_path, vnnlib_path = root / instance.onnx, root / instance.vnnlib
    if peer == "marabou":
        executable = Path(args.peer_dir) / "marabou" / "bin" / "Marabou"
        command = [str(executable), "--input", str(onnx_path), "--property", str(vnnlib_path),
                   "--timeout", str(max(1, math.ceil(timeout)))]  # fmt: skip
        out, _, code, seconds = run_process(command, timeout + args.grace)
        words = [line.strip().lower() for line in out.splitlines()]
        result = "unsat" if "unsat" in words else "sat" if "sat" in words else "unknown"
        if result == "unknown" and (code is None or seconds >= timeout):
            result = "timeout"
        return judge(Outcome(result, seconds), instance.expected)
    folder = neuralsat_folder(Path(args.peer_dir))
    python = Path(args.peer_dir) / "neuralsat" / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "result.txt"
        command = [str(python), "main.py", "--net", str(onnx_path), "--spec", str(vnnlib_path),
                   "--timeout", str(timeout), "--device", "cpu",
                   "--result_file", str(results)]  # fmt: skip
        _, _, code, seconds = run_process(command, timeout + args.grace, cwd=folder)
        text = results.read_text().strip() if results.exists() else ""
    result = text.splitlines()[0].strip().lower() if text else ""
    if result not in ("sat", "unsat", "unknown", "timeout", "error"):
        result = "timeout" if code is None or seconds >= timeout else "unknown"
    return judge(Outcome(result, seconds), instance.expected)


# -- reporting ------------------------------------------------------------------------


def summary(outcomes: list[Outcome]) -> dict[str, object]:
    times = [o.seconds for o in outcomes]
    counts = {k: sum(o.result == k and not o.wrong for o in outcomes) for k in
              ("unsat", "sat", "unknown", "timeout", "error")}  # fmt: skip
    return {
        "solved": sum(o.solved for o in outcomes),
        "holds": counts["unsat"],
        "violated": counts["sat"],
        "unknown": counts["unknown"],
        "timeout": counts["timeout"],
        "error": counts["error"],
        "WRONG": sum(o.wrong for o in outcomes),
        "total s": round(sum(times), 1),
        "median s": round(statistics.median(times), 2) if times else 0.0,
    }


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def show(result: Outcome) -> str:
    return ("WRONG " if result.wrong else "") + result.result


def report(instances: list[Instance], columns: dict[str, list[Outcome]]) -> None:
    """Per-instance table (with time ratios ours / other) and one summary line per tool."""
    names = list(columns)
    headers = ["instance", "expected"]
    for k, name in enumerate(names):
        headers += [name, "s"] + (["ratio"] if k else [])
    rows = []
    for n, instance in enumerate(instances):
        row = [instance.name, instance.expected or "-"]
        for k, name in enumerate(names):
            outcome = columns[name][n]
            row += [show(outcome), f"{outcome.seconds:.2f}"]
            if k:
                ours = columns[names[0]][n].seconds
                row.append(f"{ours / outcome.seconds:.2f}" if outcome.seconds > 0 else "inf")
        rows.append(row)
    print_table(headers, rows)
    for instance, outcome in zip(instances, columns[names[0]], strict=True):
        if outcome.note:
            print(f"note: {instance.name}: {outcome.note}")
    print()
    keys = list(summary(columns[names[0]]))
    print_table(["tool", *keys], [[name, *summary(o).values()] for name, o in columns.items()])


def write_csv(path: str, instances: list[Instance], columns: dict[str, list[Outcome]]) -> None:
    """One row per instance: ours, then ``<tool>_result``, ``<tool>_time_s`` per other tool."""
    names = list(columns)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        header = ["onnx", "vnnlib", "timeout", "expected", "result", "time_s", "wrong", "note"]
        for name in names[1:]:
            tool = name.replace(" (peers.md)", "_peers_md")
            header += [f"{tool}_result", f"{tool}_time_s", f"{tool}_wrong"]
        writer.writerow(header)
        for n, i in enumerate(instances):
            o = columns[names[0]][n]
            row = [i.onnx, i.vnnlib, i.timeout, i.expected, o.result, f"{o.seconds:.3f}",
                   int(o.wrong), o.note]  # fmt: skip
            for name in names[1:]:
                t = columns[name][n]
                row += [t.result, f"{t.seconds:.3f}", int(t.wrong)]
            writer.writerow(row)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", required=True, help="folder with instances.csv")
    parser.add_argument("--instances", type=int, default=None, help="run only the first N")
    parser.add_argument("--timeout-scale", type=float, default=1.0, help="multiply timeouts")
    parser.add_argument(
        "--timeout", type=float, default=None, help="one timeout for all (peers.md used 60)"
    )
    parser.add_argument("--sample", choices=sorted(SAMPLES), help="a sample listed in peers.md")
    parser.add_argument("--instances-file", help="CSV (onnx,vnnlib) or peers.md-style table")
    parser.add_argument("--peers-md", default=None, help="default: BENCHMARK/../../peers.md")
    parser.add_argument("--peer", choices=PEERS, help="run this peer on the same instances")
    parser.add_argument("--peer-dir", default=str(DEFAULT_PEER_DIR), help="peers' venvs")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds past the timeout")
    parser.add_argument("--python", default=sys.executable, help="interpreter running ours")
    parser.add_argument(
        "--reference", action="store_true", help="with --sample: also show peers.md's results"
    )
    parser.add_argument("--output", help="write per-instance results to this CSV file")
    parser.add_argument("--list", action="store_true", help="list the instances and stop")
    args = parser.parse_args(argv)
    if args.peers_md is None:
        args.peers_md = str(Path(args.benchmark).resolve().parent.parent / "peers.md")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(args.benchmark)
    instances = choose(args, load_instances(root))
    if args.list:
        for i in instances:
            print(f"{i.onnx},{i.vnnlib},{i.timeout:g},{i.expected or '-'}")
        return 0
    ours, theirs = [], []
    for k, instance in enumerate(instances):
        timeout = (args.timeout or instance.timeout) * args.timeout_scale
        ours.append(run_ours(instance, root, timeout, args))
        line = (
            f"[{k + 1}/{len(instances)}] {instance.name}: {show(ours[-1])} {ours[-1].seconds:.1f}s"
        )
        if args.peer:
            theirs.append(run_peer(args.peer, instance, root, timeout, args))
            line += f" | {args.peer}: {show(theirs[-1])} {theirs[-1].seconds:.1f}s"
        print(line, file=sys.stderr, flush=True)
    columns = {"ours": ours}
    if args.peer:
        columns[args.peer] = theirs
    if args.reference and args.sample:
        text = Path(args.peers_md).read_text()
        columns.update(reference(text, SAMPLES[args.sample], instances))
    report(instances, columns)
    if args.output:
        write_csv(args.output, instances, columns)
    return 1 if any(o.wrong for o in ours) else 0


if __name__ == "__main__":
    raise SystemExit(main())
