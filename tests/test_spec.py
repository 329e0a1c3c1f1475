"""Regions and properties: validation and normal form."""

from __future__ import annotations

import numpy as np
import pytest

from prover.errors import PropertyError, RegionError
from prover.spec import Box, Linear, LinfBall, OutputBounds, Robust


def test_box_validation() -> None:
    with pytest.raises(RegionError, match="inverted"):
        Box([0.0, 1.0], [1.0, 0.5])
    with pytest.raises(RegionError, match="NaN"):
        Box([np.nan], [1.0])
    with pytest.raises(RegionError, match="finite"):
        Box([0.0], [np.inf])
    with pytest.raises(RegionError, match="different shapes"):
        Box([0.0, 0.0], [1.0])
    box = Box([0.0, 0.0], [1.0, 2.0])
    assert box.contains([1.0, 2.0]) and not box.contains([1.0, 2.0000001])
    with pytest.raises(RegionError, match="model input has shape"):
        box.to_box((3,))


def test_linf_ball() -> None:
    with pytest.raises(RegionError, match="non-negative"):
        LinfBall([0.0], -0.1)
    box = LinfBall([0.5, 0.9], 0.2, clip_min=0.0, clip_max=1.0).to_box((2,))
    np.testing.assert_allclose(box.lower, [0.3, 0.7])
    np.testing.assert_allclose(box.upper, [0.7, 1.0])


def test_robust_normal_form_and_predicate() -> None:
    prop = Robust(1)
    polys = prop.unsafe_polytopes(3)
    assert len(polys) == 2
    y_safe = np.array([0.0, 1.0, 0.5])
    y_tie = np.array([1.0, 1.0, 0.5])
    assert not prop.violated_by(y_safe) and prop.violated_by(y_tie)
    assert not any(p.contains(y_safe) for p in polys)
    assert any(p.contains(y_tie) for p in polys)
    with pytest.raises(PropertyError, match="does not exist"):
        Robust(3).unsafe_polytopes(3)


def test_output_bounds_and_linear() -> None:
    prop = OutputBounds(lower=[0.0, None], upper=[1.0, 2.0])
    with pytest.raises(PropertyError):
        prop.unsafe_polytopes(3)
    ob = OutputBounds(lower=[0.0, -1.0], upper=[1.0, 2.0])
    assert len(ob.unsafe_polytopes(2)) == 4
    assert ob.violated_by([-0.1, 0.0]) and not ob.violated_by([0.0, 2.0])
    lin = Linear([[1.0, 1.0]], [1.0])
    assert lin.violated_by([0.6, 0.6]) and not lin.violated_by([0.5, 0.5])
    (poly,) = lin.unsafe_polytopes(2)
    assert poly.contains([0.6, 0.6]) and not poly.contains([0.2, 0.2])
