"""Start-up overhead: import the package and load a tiny network, in a fresh process.

Prints a table of wall-clock seconds over several runs (median and max). The target is
under 2 seconds for `import prover` + `prover.load(tiny network)`.

Usage: python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "acasxu" / "ACASXU_run2a_1_1_batch_2000.onnx"

CASES = {
    "import prover + load (ACAS Xu net)": f"import prover; prover.load({str(TINY)!r})",
    "... + evaluate (imports torch)": (
        f"import prover; g = prover.load({str(TINY)!r}); prover.evaluate(g, [0.0] * 5)"
    ),
    "python -m prover --help": None,
}


def time_once(code: str | None) -> float:
    argv = (
        [sys.executable, "-m", "prover", "--help"] if code is None else [sys.executable, "-c", code]
    )
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'case':<40} {'median s':>9} {'max s':>7}")
    for name, code in CASES.items():
        times = [time_once(code) for _ in range(args.runs)]
        print(f"{name:<40} {statistics.median(times):>9.2f} {max(times):>7.2f}")


if __name__ == "__main__":
    main()
