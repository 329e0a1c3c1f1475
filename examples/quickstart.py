"""Quickstart: import a PyTorch model, bound it, prove robustness, find a violation.

Run: ``python examples/quickstart.py`` (a few seconds on a laptop CPU).
"""

from __future__ import annotations

import numpy as np
import torch

from prover import Box, LinfBall, OutputBounds, Robust, bounds, evaluate, load, prove


def main() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 3),
    )
    graph = load(model, input_shape=(4,))
    x0 = np.array([0.5, -0.2, 0.1, 0.3])
    y0 = evaluate(graph, x0)
    label = int(np.argmax(y0))
    print(f"model output at x0: {np.round(y0, 4)} -> label {label}")

    for domain in ("interval", "zonotope"):
        lo, hi = bounds(graph, Box(x0 - 0.01, x0 + 0.01), domain=domain)
        print(f"{domain:>9} bounds over the 0.01-ball: widths {np.round(hi - lo, 4)}")

    small = prove(graph, Robust(label), LinfBall(x0, eps=0.001), timeout=20)
    print(f"robust at eps=0.001: {small.summary()}")
    large = prove(graph, Robust(label), LinfBall(x0, eps=2.0), timeout=20)
    print(f"robust at eps=2.0:   {large.summary()}")
    if large.counterexample is not None:
        print(
            f"  counterexample {np.round(large.counterexample, 4)} -> "
            f"{np.round(evaluate(graph, large.counterexample), 4)}"
        )
    claim = prove(graph, OutputBounds(lower=y0 - 100, upper=y0 + 100), Box(x0 - 0.1, x0 + 0.1))
    print(f"outputs within +-100 of y0 on the 0.1-box: {claim.summary()}")


if __name__ == "__main__":
    main()
