"""The linear domain on a real network: ACAS Xu 1_1 over tiles of property 1's box."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from domains.linear.api import bound_outputs, linear_bounds
from importers import load_model

ACAS = Path("/work/shared/benchmarks/vnncomp/acasxu/onnx/ACASXU_run2a_1_1_batch_2000.onnx")
LOWER = [0.6, -0.5, -0.5, 0.45, -0.5]
UPPER = [0.679857769, 0.5, 0.5, 0.5, -0.45]


@pytest.mark.skipif(not ACAS.exists(), reason="shared benchmarks not present")
def test_acasxu_bounds_are_sound_on_samples(h):
    graph = load_model(ACAS)
    rng = np.random.default_rng(0)
    lo, hi = torch.tensor(LOWER, dtype=torch.float64), torch.tensor(UPPER, dtype=torch.float64)
    # 8 random sub-boxes of the property's box, a tenth of its width in each dimension.
    corner = lo + (hi - lo) * 0.9 * torch.tensor(rng.uniform(size=(8, 5)))
    lower = corner.reshape(8, *graph.input_shape)
    upper = (corner + (hi - lo) * 0.1).reshape(8, *graph.input_shape)
    ys = h.outputs(graph, h.samples(lower, upper, 1000, rng))
    out_lo, out_hi = bound_outputs(graph, lower, upper)
    assert (ys >= out_lo.reshape(8, 1, -1)).all() and (ys <= out_hi.reshape(8, 1, -1)).all()
    # Property 1's row, -Y_0: back-substitution from C, with and without alpha.
    C = torch.tensor([[-1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    plain = linear_bounds(graph, lower, upper, C)
    alpha = linear_bounds(graph, lower, upper, C, alpha_steps=10)
    assert (-ys[..., :1] >= plain.lower.unsqueeze(1)).all()
    assert (-ys[..., :1] >= alpha.lower.unsqueeze(1)).all()
    assert (alpha.lower >= plain.lower - 1e-9).all()
