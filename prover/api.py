"""The public Python API: ``load``, ``evaluate``, ``bounds`` and ``prove``.

torch, the domains and the engine are imported on first use, so that importing the
package and loading a model stays fast (start-up overhead matters for one-shot CLI runs).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from prover.errors import PropertyError, RegionError
from prover.ir.graph import Graph
from prover.options import Options
from prover.result import Result, Verdict
from prover.spec.properties import Property, Subproblem
from prover.spec.regions import Box, LinfBall

log = logging.getLogger(__name__)

ModelLike = Any  # path, bytes, onnx.ModelProto, torch.nn.Module or Graph


def load(
    source: ModelLike,
    *,
    example_input: Any = None,
    input_shape: tuple[int, ...] | None = None,
) -> Graph:
    """Import a model into the IR, shape-checked.

    Args:
        source: an ONNX file path, ONNX bytes, an ``onnx.ModelProto``, a
            ``torch.nn.Module`` (with ``example_input`` or ``input_shape``) or a Graph.
        example_input: for torch modules, one input without batch axis (or with).
        input_shape: for torch modules, the input shape without batch axis.

    Raises:
        ModelError, ShapeError, UnsupportedOperation, InvalidWeightsError.
    """
    if isinstance(source, Graph):
        return source
    from importers import load_model

    return load_model(source, example_input=example_input, input_shape=input_shape)


def evaluate(model: ModelLike, x: Any) -> np.ndarray:
    """Evaluate the IR's reference semantics (float64) on one input (no batch axis)."""
    from prover import semantics

    graph = load(model)
    array = np.asarray(x, dtype=np.float64)
    if array.size != graph.input_size:
        raise RegionError(
            f"input has {array.size} values but the model input has shape {graph.input_shape}"
        )
    return semantics.evaluate(graph, array.reshape(graph.input_shape))


def _box(graph: Graph, region: Box | LinfBall) -> Box:
    if isinstance(region, (Box, LinfBall)):
        return region.to_box(graph.input_shape)
    raise RegionError(f"expected a Box or LinfBall region, got {type(region).__name__}")


def bounds(
    model: ModelLike, region: Box | LinfBall, domain: str = "interval"
) -> tuple[np.ndarray, np.ndarray]:
    """Sound lower and upper bounds of every output over ``region``.

    Returns numpy arrays of the output shape. Entries may be infinite where the domain
    cannot bound them (never NaN: NaN is reported as an infinite bound).
    """
    import torch

    from domains import get_domain

    graph = load(model)
    box = _box(graph, region)
    lower = torch.tensor(box.lower, dtype=torch.float64).unsqueeze(0)
    upper = torch.tensor(box.upper, dtype=torch.float64).unsqueeze(0)
    with torch.no_grad():
        out_lo, out_hi = get_domain(domain).bound_outputs(graph, lower, upper)
    lo = out_lo[0].detach().cpu().numpy()
    hi = out_hi[0].detach().cpu().numpy()
    return np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)


def normalise(graph: Graph, prop: Property, region: Box | LinfBall | None) -> list[Subproblem]:
    """The property and region as subproblems (input box + unsafe polytopes)."""
    if region is None:
        if hasattr(prop, "subproblems"):
            return list(prop.subproblems(graph.input_shape, graph.output_size))
        raise RegionError(f"property {prop.describe()!r} needs an input region")
    if not isinstance(prop, Property):
        raise PropertyError(f"expected a property, got {type(prop).__name__}")
    return [Subproblem(_box(graph, region), prop.unsafe_polytopes(graph.output_size))]


def _violation_predicate(prop: Property):
    if hasattr(prop, "violated_at"):
        return lambda x, y: bool(prop.violated_at(x, y))
    return lambda x, y: bool(prop.violated_by(y))


def prove(
    model: ModelLike,
    prop: Property,
    region: Box | LinfBall | None = None,
    *,
    options: Options | None = None,
    certificate: str | Path | None = None,
    check: bool | None = None,
    **overrides: Any,
) -> Result:
    """Prove ``prop`` over ``region``, or find a counterexample, or say UNKNOWN.

    Args:
        model: anything :func:`load` accepts.
        prop: the property (Robust, OutputBounds, Linear, VNNLib, ...).
        region: the input region; None when the property carries it (VNN-LIB).
        options: an Options object; ``overrides`` change single fields
            (``timeout=10``, ``seed=1``, ``domains=("interval",)``...).
        certificate: path to write a certificate to (HOLDS and VIOLATED results).
        check: run the independent checker on the certificate before returning.

    Returns:
        A Result. Bad input raises a ProverError subclass; a failure while proving
        gives UNKNOWN with the reason, never a verdict.
    """
    options = (options or Options()).with_(**overrides) if overrides else options or Options()
    if certificate is not None:
        options = options.with_(certificate=str(certificate))
    if check is not None:
        options = options.with_(check=check)
    from prover.engine.bab import resolve_device
    from prover.engine.verify import verify

    resolve_device(options.device)  # a device that is not there is bad input, not UNKNOWN

    start = time.monotonic()
    graph = load(model, input_shape=_torch_input_shape(model, region))
    custom = getattr(prop, "prove_on", None)
    if custom is not None:
        result = custom(graph, region, options)
    else:
        subproblems = normalise(graph, prop, region)
        result = verify(graph, prop, subproblems, _violation_predicate(prop), options)
    result = _with_elapsed(result, time.monotonic() - start)
    if options.certificate and result.verdict is not Verdict.UNKNOWN:
        result = _certify(result, graph, model, prop, region, options, custom is not None)
    return result


def _torch_input_shape(model: ModelLike, region: Box | LinfBall | None):
    """For a torch module without a shape of its own, the region's shape."""
    if isinstance(model, Graph) or not hasattr(model, "forward") or region is None:
        return None
    if isinstance(region, Box):
        return region.shape
    if isinstance(region, LinfBall):
        return tuple(region.center.shape)
    return None


def _with_elapsed(result: Result, elapsed: float) -> Result:
    from dataclasses import replace

    return replace(result, elapsed=elapsed)


def _certify(
    result: Result,
    graph: Graph,
    model: ModelLike,
    prop: Property,
    region,
    options: Options,
    whole_model: bool = False,
) -> Result:
    """Write (and by default check) the certificate of a decided result; a whole-model
    property's certificate rests on this prover's decision (proofs/FORMAT.md section 11)."""
    from dataclasses import replace

    from proofs.writer import certify_result, certify_whole_model

    certify = certify_whole_model if whole_model else certify_result
    path, checked, report = certify(result, graph, model, prop, region, options)
    stats = dict(result.stats, certificate_report=report)
    return replace(result, certificate=path, checked=checked, stats=stats)
