"""Soundness by sampling for every (domain, op) pair, generated from the TRANSFER tables."""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np
import pytest
import torch
from domain_cases import CASES, check_contains, sample_box

from domains import get_domain
from prover.ir.ops import ALL_OPS

DOMAIN_NAMES = ("interval", "zonotope")


def _plain_zonotope():
    """The zonotope without interval hints, so that its own transfer functions are tested."""
    zono = get_domain("zonotope")
    return dataclasses.replace(
        zono,
        name="zonotope-plain",
        bound_outputs=functools.partial(zono.bound_outputs, interval_hints=False),
        bound_linear=functools.partial(zono.bound_linear, interval_hints=False),
    )


VARIANTS = {"interval": get_domain("interval"), "zonotope": get_domain("zonotope")}
VARIANTS["zonotope-plain"] = _plain_zonotope()
PAIRS = [(name, op_class) for name, domain in VARIANTS.items() for op_class in domain.table.rules]


@pytest.mark.parametrize("name", DOMAIN_NAMES)
def test_every_op_has_a_rule_and_a_case(name):
    table = get_domain(name).table
    assert set(table.rules) == set(ALL_OPS)
    missing = [cls.__name__ for cls in table.rules if cls not in CASES]
    assert not missing, f"ops without soundness cases: {missing}"


@pytest.mark.parametrize(("name", "op_class"), PAIRS, ids=[f"{n}-{c.__name__}" for n, c in PAIRS])
def test_sound_by_sampling(name, op_class):
    domain = VARIANTS[name]
    rng = np.random.default_rng(zlib.crc32(f"{name}/{op_class.__name__}".encode()))
    for case in CASES[op_class](rng):
        lower, upper = domain.bound_outputs(case.graph, case.lower, case.upper)
        batch = case.lower.shape[0]
        assert lower.shape == upper.shape == (batch, *case.graph.output_shape), case.name
        n_out = case.graph.output_size
        C = torch.from_numpy(rng.normal(size=(3, n_out)))
        linear = domain.bound_linear(case.graph, case.lower, case.upper, C)
        assert linear.shape == (batch, 3)
        if case.finite:
            assert torch.isfinite(lower).all() and torch.isfinite(upper).all(), case.name
            assert torch.isfinite(linear).all(), case.name
            assert (lower <= upper).all(), case.name
        for b in range(batch):
            points = sample_box(case.lower[b], case.upper[b], rng, case.samples)
            y = check_contains(case.graph, points, lower[b], upper[b])
            if case.finite:
                values = y @ C.T
                worst = values.min(dim=0).values
                assert (worst >= linear[b]).all(), (case.name, worst, linear[b])
