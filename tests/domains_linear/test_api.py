"""The linear domain's entry points: contract, errors, non-finite values, chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import domains.linear.api as api
import domains.linear.engine as engine
from domains import get_domain
from prover.errors import GraphError, ProverError, RegionError, ShapeError, UnsupportedOperation
from prover.ir import ops
from prover.ir.graph import Graph, Node


def test_registered_domains_follow_the_contract(h):
    rng = np.random.default_rng(1)
    graph = h.mlp(rng, [3, 5, 2])
    lower, upper = h.random_box(rng, (3,), batch=2)
    for name in ("deeppoly", "crown", "alpha-crown"):
        domain = get_domain(name)
        lo, hi = domain.bound_outputs(graph, lower, upper)
        assert lo.shape == hi.shape == (2, 2) and lo.dtype == torch.float64
        assert (lo <= hi).all()
        out = domain.bound_linear(graph, lower, upper, torch.eye(2, dtype=torch.float64))
        assert out.shape == (2, 2)
        batched = domain.bound_linear(
            graph, lower, upper, torch.eye(2, dtype=torch.float64).repeat(2, 1, 1)
        )
        assert torch.equal(out, batched)
        assert domain.table.supports(ops.Conv) and not domain.table.supports(ops.Mul)


def test_unsupported_op_names_node_and_lists_supported():
    graph = Graph(
        (("x", (2,)),),
        (Node("sq", ops.Mul(), ("x", "x"), source="onnx node 'm' (Mul)"),),
        "sq",
    )
    with pytest.raises(UnsupportedOperation) as info:
        api.bound_outputs(graph, torch.zeros(1, 2), torch.ones(1, 2))
    message = str(info.value)
    assert "Mul" in message and "onnx node 'm'" in message and "linear domain" in message
    assert "Gemm" in info.value.supported and "Relu" in info.value.supported


def test_bad_inputs_raise_prover_errors(h):
    graph = h.mlp(np.random.default_rng(0), [3, 4, 2])
    with pytest.raises(ShapeError):
        api.bound_outputs(graph, torch.zeros(1, 4), torch.ones(1, 4))
    with pytest.raises(RegionError):
        api.bound_outputs(graph, torch.ones(1, 3), torch.zeros(1, 3))
    with pytest.raises(ShapeError):
        api.bound_linear(graph, torch.zeros(1, 3), torch.ones(1, 3), torch.ones(2, 5))
    with pytest.raises(ProverError):
        api.linear_bounds(
            graph, torch.zeros(1, 3), torch.ones(1, 3), torch.ones(1, 2), policy="magic"
        )
    with pytest.raises(ShapeError):
        api.linear_bounds(
            graph,
            torch.zeros(1, 3),
            torch.ones(1, 3),
            torch.ones(1, 2),
            splits={"v0": torch.zeros(1, 7, dtype=torch.int8)},
        )
    with pytest.raises(GraphError, match="not the input of a Relu"):
        api.linear_bounds(
            graph,
            torch.zeros(1, 3),
            torch.ones(1, 3),
            torch.ones(1, 2),
            splits={"v1": torch.zeros(1, 4, dtype=torch.int8)},
        )


def test_overflow_gives_nan_never_a_finite_claim():
    big = np.full((4, 4), 1e300)
    graph = Graph(
        (("x", (4,)),),
        (
            Node("a", ops.Gemm(big, np.zeros(4)), ("x",)),
            Node("r", ops.Relu(), ("a",)),
            Node("b", ops.Gemm(big, np.zeros(4)), ("r",)),
        ),
        "b",
    )
    lo, hi = api.bound_outputs(graph, -torch.ones(1, 4), torch.ones(1, 4))
    assert not torch.isfinite(lo).all() or not torch.isfinite(hi).all()
    result = api.linear_bounds(graph, -torch.ones(1, 4), torch.ones(1, 4), torch.ones(1, 4))
    assert torch.isnan(result.lower).all() or (result.lower == float("-inf")).all()


def test_batch_chunking_gives_the_same_bounds(h, monkeypatch):
    rng = np.random.default_rng(3)
    graph = h.mlp(rng, [3, 6, 6, 2])
    lower, upper = h.random_box(rng, (3,), batch=5)
    C = torch.tensor(rng.normal(size=(2, 2)))
    whole = api.linear_bounds(graph, lower, upper, C, return_coefficients=True)
    monkeypatch.setattr(api, "ROW_CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(engine, "ROW_CHUNK_ELEMENTS", 1)
    parts = api.linear_bounds(graph, lower, upper, C, return_coefficients=True)
    assert torch.allclose(whole.lower, parts.lower, rtol=0, atol=1e-12)
    assert torch.allclose(whole.coefficients, parts.coefficients, rtol=0, atol=1e-12)
    assert set(parts.slopes) == set(whole.slopes) == {"v0", "v2"}
    assert parts.slopes["v0"].shape == (5, 6)


def test_alpha_tightens_a_loose_bound(h):
    # A 2-16-16-1 network over a wide box: the heuristic slopes are not optimal somewhere.
    rng = np.random.default_rng(7)
    graph = h.mlp(rng, [2, 16, 16, 1])
    lower, upper = -torch.ones(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64)
    C = torch.tensor([[1.0], [-1.0]])
    plain = api.linear_bounds(graph, lower, upper, C)
    alpha = api.linear_bounds(graph, lower, upper, C, alpha_steps=30)
    assert alpha.lower.sum() > plain.lower.sum() + 1e-6
    warm = api.linear_bounds(graph, lower, upper, C, slopes=alpha.slopes, alpha_steps=2)
    assert warm.lower.sum() >= alpha.lower.sum() - 1e-9
