"""The VNN-COMP runner: one (ONNX, VNN-LIB) instance in, the competition's result file out.

``prover vnncomp NET.onnx SPEC.vnnlib --timeout 60 --results-file out.txt`` writes exactly
what the competition's harness reads:

* ``unsat``: the property holds (the unsafe set of the VNN-LIB file is unreachable);
* ``sat`` followed by the counterexample ``((X_0 v) ... (Y_0 v) ...)``, one pair a line,
  where the ``Y`` values are ONNX Runtime's output on the written ``X`` values and the
  pair satisfies the VNN-LIB formula exactly (:meth:`VNNLib.violated_at`);
* ``timeout``: undecided because the wall-clock budget ran out;
* ``unknown``: undecided for another reason (or a counterexample failed its replay);
* ``error``: the instance could not be processed; the message goes to stderr.

A VNN-LIB file asserts the *violation*, hence HOLDS -> unsat and VIOLATED -> sat.
The budget counts from the start of the process (Python and torch start-up included,
read from ``/proc`` where available) and keeps a small margin for writing the answer.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prover.options import Options
from prover.result import Result, Verdict

log = logging.getLogger(__name__)

#: The result keywords of the competition.
KEYWORDS = ("unsat", "sat", "unknown", "timeout", "error")

#: Seconds kept back from the budget for the replay and writing the result.
MARGIN_S = 1.0

#: The watchdog of the command answers ``timeout`` this many seconds before the deadline.
WATCHDOG_S = 0.5


def process_age() -> float:
    """Seconds since this process started (0.0 where /proc is not available)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def format_counterexample(x: np.ndarray, y: np.ndarray) -> str:
    """The competition's counterexample text: ``((X_0 v)\\n (X_1 v)\\n ... (Y_m v))``.

    Values are written with ``repr`` (the shortest text that reads back to the same
    float64), so the file denotes exactly the input that was replayed.
    """
    pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(np.asarray(x).reshape(-1))]
    pairs += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(np.asarray(y).reshape(-1))]
    return "(" + "\n ".join(pairs) + ")"


def write_result(path: str | os.PathLike[str] | None, keyword: str, body: str = "") -> None:
    """Write the result file (or stdout when ``path`` is None): keyword, then the body."""
    if keyword not in KEYWORDS:
        raise ValueError(f"not a result keyword: {keyword!r}")
    text = keyword + "\n" + (body + "\n" if body else "")
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    temporary = target.with_name(target.name + ".partial")
    temporary.write_text(text)
    os.replace(temporary, target)


_PAIR = re.compile(r"\(\s*([XY])_(\d+)\s+([^\s()]+)\s*\)")


def read_result(text: str) -> tuple[str, np.ndarray | None, np.ndarray | None]:
    """Parse a result file's text: (keyword, x, y); x and y only after ``sat``.

    Raises:
        ValueError: on an unknown keyword or a malformed counterexample.
    """
    lines = text.strip().splitlines()
    keyword = lines[0].strip().lower() if lines else ""
    if keyword not in KEYWORDS:
        raise ValueError(f"unknown result keyword {keyword!r}")
    if keyword != "sat":
        return keyword, None, None
    values: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
    for kind, index, number in _PAIR.findall("\n".join(lines[1:])):
        values[kind][int(index)] = float(number)
    arrays = []
    for kind in ("X", "Y"):
        found = values[kind]
        if sorted(found) != list(range(len(found))) or not found:
            raise ValueError(f"counterexample {kind} values missing or not numbered from 0")
        arrays.append(np.array([found[i] for i in range(len(found))]))
    return keyword, arrays[0], arrays[1]


def _replay_counterexample(graph, prop, result: Result) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, y) with y from ONNX Runtime on x, if the pair violates the property exactly."""
    from prover.engine.replay import replay

    x = np.asarray(result.counterexample, dtype=np.float64)
    for sub in prop.subproblems(graph.input_shape, graph.output_size):
        if not sub.box.contains(x):
            continue
        replayed = replay(graph, x, sub.box)
        if replayed is not None and prop.violated_at(replayed.x, replayed.y):
            return replayed.x.reshape(-1), replayed.y.reshape(-1)
    return None


class _Answer:
    """The result file, written once: the first of the runner and the watchdog wins."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.keyword: str | None = None

    def write(self, keyword: str, body: str = "") -> bool:
        with self.lock:
            if self.keyword is not None:
                return False
            write_result(self.path, keyword, body)
            self.keyword = keyword
            return True


def run_instance(
    onnx_path: str | os.PathLike[str],
    vnnlib_path: str | os.PathLike[str],
    timeout: float,
    results_file: str | os.PathLike[str] | None = None,
    *,
    options: Options | None = None,
    started: float | None = None,
    hard_deadline: bool = False,
    exit_process: Callable[[int], object] = os._exit,
) -> str:
    """Decide one VNN-COMP instance and write its result file.

    Args:
        onnx_path: the network.
        vnnlib_path: the VNN-LIB property (asserting the violation).
        timeout: the instance's wall-clock budget in seconds.
        results_file: where to write the result; None writes it to stdout.
        options: options for :func:`prover.api.prove` (its timeout is replaced).
        started: ``time.monotonic()`` at which the budget started; default: now. The
            command passes the process start, so that interpreter and import time count,
            as in the competition.
        hard_deadline: start a watchdog thread that, should the proof overrun the budget,
            writes ``timeout`` just before the deadline and ends the process with
            ``exit_process(0)``. Only for the command: it ends the whole process.
        exit_process: how the watchdog ends the process (``os._exit``; tests replace it).

    Returns:
        The result keyword written: unsat, sat, unknown, timeout or error. Never raises
        for a bad instance: any exception gives ``error`` and a message on stderr.
    """
    if started is None:
        started = time.monotonic()
    deadline = started + float(timeout)
    answer = _Answer(results_file)
    watchdog = None
    if hard_deadline:

        def overrun() -> None:
            if answer.write("timeout"):
                log.warning("the budget of %gs ran out: answering timeout", timeout)
                exit_process(0)

        watchdog = threading.Timer(max(0.0, deadline - WATCHDOG_S - time.monotonic()), overrun)
        watchdog.daemon = True
        watchdog.start()
    try:
        keyword, body = _decide(onnx_path, vnnlib_path, deadline, options or Options())
    except Exception as exc:  # noqa: BLE001 - every failure is the "error" answer
        log.error("%s on %s with %s: %s", type(exc).__name__, onnx_path, vnnlib_path, exc)
        log.debug("details", exc_info=True)
        keyword, body = "error", ""
    if watchdog is not None:
        watchdog.cancel()
    answer.write(keyword, body)
    return answer.keyword or keyword


def _decide(
    onnx_path: str | os.PathLike[str],
    vnnlib_path: str | os.PathLike[str],
    deadline: float,
    options: Options,
) -> tuple[str, str]:
    from importers.vnnlib import VNNLib
    from prover.api import load, prove

    graph = load(str(onnx_path))
    prop = VNNLib(vnnlib_path)
    prop.subproblems(graph.input_shape, graph.output_size)  # sizes checked before proving
    budget = deadline - time.monotonic() - MARGIN_S
    if budget <= 0:
        return "timeout", ""
    result = prove(graph, prop, options=options.with_(timeout=budget))
    log.info("%s", result.summary())
    if result.verdict is Verdict.HOLDS:
        return "unsat", ""
    if result.verdict is Verdict.VIOLATED:
        pair = _replay_counterexample(graph, prop, result)
        if pair is None:
            log.warning("the counterexample did not replay on ONNX Runtime; answering unknown")
            return "unknown", ""
        return "sat", format_counterexample(*pair)
    timed_out = bool(result.stats.get("timeout")) or time.monotonic() >= deadline - MARGIN_S
    log.warning("%s: %s", "timeout" if timed_out else "unknown", result.reason or "undecided")
    return ("timeout" if timed_out else "unknown"), ""


def add_vnncomp_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``prover vnncomp``."""
    parser.add_argument("onnx", help="the network (ONNX)")
    parser.add_argument("vnnlib", help="the property (VNN-LIB, asserting the violation)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="wall-clock budget in seconds (default 60)"
    )
    parser.add_argument(
        "--results-file", default=None, help="where to write the result (default: stdout)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument(
        "--hard-exit",
        action="store_true",
        help="end the process (os._exit) as soon as the answer is written, skipping seconds "
        "of interpreter teardown, and answer timeout at the deadline if the proof overruns "
        "(run_instance.sh uses it; never with main() called in-process)",
    )


def run_vnncomp_command(args: argparse.Namespace) -> int:
    """``prover vnncomp``: exit status 0 when an answer was written, 1 for ``error``."""
    options = Options(seed=args.seed, device=args.device, certificate=None)
    started = time.monotonic() - process_age()
    keyword = run_instance(
        args.onnx,
        args.vnnlib,
        args.timeout,
        args.results_file,
        options=options,
        started=started,
        hard_deadline=args.hard_exit,
    )
    status = 1 if keyword == "error" else 0
    if args.hard_exit:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status
