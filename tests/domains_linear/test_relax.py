"""The scalar relaxations, checked on dense grids of each interval (zero tolerance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from domains.linear import relax


def _intervals(rng, n=400, scale=4.0):
    a = rng.normal(size=n) * scale
    b = rng.normal(size=n) * scale
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # some wholly negative, wholly positive, tiny and degenerate intervals
    lo[:40], hi[:40] = -np.abs(hi[:40]) - 1.0, -np.abs(lo[:40]) * 0.1
    lo[40:80], hi[40:80] = np.abs(lo[40:80]) * 0.1, np.abs(hi[40:80]) + 1.0
    hi[80:100] = lo[80:100] + 1e-9
    hi[100:110] = lo[100:110]
    return torch.tensor(lo), torch.tensor(hi)


def _check(rel, lo, hi, f):
    t = torch.linspace(0, 1, 257, dtype=torch.float64)
    x = lo.unsqueeze(1) + (hi - lo).unsqueeze(1) * t
    x = torch.cat([x, lo.unsqueeze(1), hi.unsqueeze(1), torch.zeros_like(lo).unsqueeze(1)], 1)
    inside = (x >= lo.unsqueeze(1)) & (x <= hi.unsqueeze(1))
    y = f(x)
    low = rel.sl.unsqueeze(1) * x + rel.tl.unsqueeze(1)
    high = rel.su.unsqueeze(1) * x + rel.tu.unsqueeze(1)
    assert ((y >= low) | ~inside).all()
    assert ((y <= high) | ~inside).all()


@pytest.mark.parametrize("seed", range(3))
def test_relu_with_random_slopes_and_splits(seed):
    rng = np.random.default_rng(seed)
    lo, hi = _intervals(rng)
    slopes = torch.tensor(rng.uniform(-0.5, 1.5, size=lo.shape))  # clamped inside
    _check(relax.relu(lo, hi), lo, hi, torch.relu)
    _check(relax.relu(lo, hi, slopes), lo, hi, torch.relu)
    split = torch.tensor(rng.choice([-1, 0, 1], size=lo.shape), dtype=torch.int8)
    lo_s = torch.where(split > 0, lo.clamp(min=0), lo)
    hi_s = torch.where(split < 0, hi.clamp(max=0), hi)
    ok = lo_s <= hi_s
    _check(relax.relu(lo_s[ok], hi_s[ok], slopes[ok], split[ok]), lo_s[ok], hi_s[ok], torch.relu)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.3, -0.7, 1.0, 2.5])
def test_leaky_relu(alpha):
    lo, hi = _intervals(np.random.default_rng(4))
    _check(relax.leaky_relu(lo, hi, alpha), lo, hi, lambda x: torch.where(x >= 0, x, alpha * x))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_s_shaped(name):
    lo, hi = _intervals(np.random.default_rng(5))
    f = getattr(torch, name)
    rel = getattr(relax, name)(lo, hi)
    _check(rel, lo, hi, f)
    # Where the input lies in one curvature region, tangent and chord beat the
    # parallelogram at the midpoint (gap between the two lines).
    one_sided = ((hi <= 0) | (lo >= 0)) & (hi - lo > 0.5)
    mid = (lo + hi) / 2
    box = relax._parallelogram(lo, hi, getattr(relax, f"{name}_value_bounds"), _derivative(name))
    gap = (rel.su - rel.sl) * mid + rel.tu - rel.tl
    gap_box = (box.su - box.sl) * mid + box.tu - box.tl
    assert (gap[one_sided] < gap_box[one_sided]).all()


def _derivative(name):
    if name == "sigmoid":
        return lambda x: torch.sigmoid(x) * torch.sigmoid(-x)
    return lambda x: torch.cosh(x).reciprocal() ** 2
