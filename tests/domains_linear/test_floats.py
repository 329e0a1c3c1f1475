"""The linear domain's outward rounding: below/above the neighbouring float, never subnormal."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from domains.linear.floats import ETA, down, inflate, up

SMALLEST_NORMAL = sys.float_info.min


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1))
def test_down_and_up_step_past_the_neighbouring_float(values):
    x = torch.tensor(values, dtype=torch.float64)
    lo, hi = down(x), up(x)
    for v, a, b in zip(values, lo.tolist(), hi.tolist(), strict=True):
        assert a <= math.nextafter(v, -math.inf) and b >= math.nextafter(v, math.inf)
        for r in (a, b):  # results are zero, infinite or normal: no slow subnormal arithmetic
            assert r == 0 or abs(r) >= SMALLEST_NORMAL


def test_special_values_and_the_absolute_slack():
    x = torch.tensor([0.0, math.inf, -math.inf, math.nan], dtype=torch.float64)
    lo, hi = down(x), up(x)
    assert lo[0] == -ETA and hi[0] == ETA and ETA >= SMALLEST_NORMAL
    assert lo[1] == math.inf and hi[2] == -math.inf
    assert math.isnan(lo[3]) and math.isnan(hi[3])
    assert float(inflate(torch.zeros(1, dtype=torch.float64), 1e-12)) >= ETA


def test_outward_rounding_refuses_other_dtypes():
    """The step 2**-52 is an ulp bound for float64 only: float32 would be rounded by far
    less than its own ulp, so it is refused instead."""
    for dtype in (torch.float32, torch.float16):
        x = torch.ones(3, dtype=dtype)
        for step in (down, up):
            with pytest.raises(TypeError, match="float64"):
                step(x)
