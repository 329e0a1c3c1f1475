"""The GPU path: the linear domain and branch and bound's bounding on a CUDA device.

These run only where torch sees a CUDA device (skipped on the CPU-only CI machine; run
on the GPU machine during development, see benchmarks/README.md). The float64 error
analysis of ``domains.linear.floats`` assumes sums of products in any order, which
cuBLAS float64 products are (TF32 never applies to float64).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from domains.linear.api import linear_bounds
from prover.engine.bab import BabConfig, branch_and_bound
from prover.options import Options
from prover.result import Verdict
from prover.spec import Box, Polytope, Subproblem

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("seed", range(4))
def test_cuda_bounds_agree_with_the_cpu_and_are_sound(h, seed):
    rng = np.random.default_rng(seed)
    graph = h.mlp(rng, [5, 40, 40, 40, 4], scale=0.4)
    lower, upper = h.random_box(rng, (5,), batch=64, width=0.3)
    C = torch.tensor(rng.normal(size=(3, 4)))
    cpu = linear_bounds(graph, lower, upper, C, return_coefficients=True)
    gpu = linear_bounds(graph, lower.cuda(), upper.cuda(), C.cuda(), return_coefficients=True)
    assert gpu.lower.device.type == "cuda"
    gpu_lower = gpu.lower.cpu()
    assert torch.isfinite(gpu_lower).all()
    scale = 1.0 + cpu.lower.abs()
    assert ((gpu_lower - cpu.lower).abs() <= 1e-9 * scale).all()  # same method, other sums
    ys = h.outputs(graph, h.samples(lower, upper, 500, rng))
    values = ys @ C.T
    assert (values >= gpu_lower.unsqueeze(1)).all(), "a CUDA bound is above a sampled value"


def test_branch_and_bound_with_cuda_bounding_decides_like_the_cpu(h):
    """y = W2 relu(W1 x + b1) + b2 on a box; thresholds just below and just above the
    sampled minimum of y_0 give HOLDS and VIOLATED on both devices."""
    rng = np.random.default_rng(7)
    graph = h.mlp(rng, [3, 20, 20, 2], scale=0.6)
    lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    pts = torch.tensor(rng.uniform(lo, hi, size=(20000, 3)))
    ys = h.outputs(graph, pts.unsqueeze(0))[0]
    low = float(ys[:, 0].min())
    for threshold, expected in ((low - 0.5, Verdict.HOLDS), (low + 0.05, Verdict.VIOLATED)):
        unsafe = Polytope(np.array([[1.0, 0.0]]), np.array([threshold]))  # y_0 <= threshold
        sub = Subproblem(Box(lo, hi), (unsafe,))
        for device in ("cpu", "cuda"):
            out = branch_and_bound(
                graph,
                sub,
                Options(device=device),
                time.monotonic() + 60,
                config=BabConfig(device_batch=1024),
            )
            assert out.verdict is expected, (device, threshold, out.reason)
