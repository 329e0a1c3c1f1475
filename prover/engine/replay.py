"""Independent replay of candidate counterexamples on ONNX Runtime (CPU).

Our own semantics finds candidates; ONNX Runtime, an executor we did not write, confirms
them. The candidate is first rounded to the model's input dtype (float32 for almost every
ONNX model) and nudged back inside the box if rounding pushed it out, so the reported
counterexample is exactly the input that ONNX Runtime ran.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from prover.errors import ModelError
from prover.ir.graph import Graph, ModelOrigin
from prover.spec.regions import Box

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    """A replayed input: ``x`` as ONNX Runtime ran it and its output ``y`` (flat)."""

    x: np.ndarray
    y: np.ndarray


@lru_cache(maxsize=16)
def _session(digest: str, onnx_bytes: bytes):  # noqa: ARG001 - digest keys the cache
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def session_for(origin: ModelOrigin):
    """A cached ONNX Runtime session for ``origin``."""
    if origin.onnx_bytes is None:
        raise ModelError("the model has no ONNX form to replay counterexamples on")
    digest = origin.sha256 or hashlib.sha256(origin.onnx_bytes).hexdigest()
    return _session(digest, origin.onnx_bytes)


def round_into_box(x: np.ndarray, box: Box, dtype: np.dtype) -> np.ndarray | None:
    """Round ``x`` to ``dtype`` and nudge each entry back into ``box``; None if impossible."""
    flat = np.clip(
        np.asarray(x, dtype=np.float64).reshape(-1), box.lower.reshape(-1), box.upper.reshape(-1)
    )
    lower, upper = box.lower.reshape(-1), box.upper.reshape(-1)
    rounded = flat.astype(dtype)
    for _ in range(4):
        as64 = rounded.astype(np.float64)
        low = as64 < lower
        high = as64 > upper
        if not (low.any() or high.any()):
            return as64.reshape(box.shape)
        rounded = np.where(low, np.nextafter(rounded, dtype.type(np.inf)), rounded)
        rounded = np.where(high, np.nextafter(rounded, dtype.type(-np.inf)), rounded)
    return None


def replay(graph: Graph, x: np.ndarray, box: Box) -> Replay | None:
    """Run ``x`` (rounded into ``box`` in the model's input dtype) on ONNX Runtime.

    Returns None when no ONNX form exists or the rounded point cannot stay inside the box.
    """
    origin = graph.origin
    if origin is None or origin.onnx_bytes is None:
        return None
    dtype = np.dtype(origin.onnx_input_dtype)
    point = round_into_box(x, box, dtype)
    if point is None:
        return None
    session = session_for(origin)
    feed = {origin.onnx_input_name: point.astype(dtype).reshape(origin.onnx_input_shape)}
    (y,) = session.run(None, feed)[:1]
    return Replay(point, np.asarray(y, dtype=np.float64).reshape(-1))
