"""ONNX importer: ONNX models (opsets 7 to 21) into the IR.

>>> graph = import_onnx("net.onnx")            # doctest: +SKIP
>>> supported_onnx_ops()[:3]                    # doctest: +SKIP
('Abs', 'Add', 'AveragePool')
"""

from __future__ import annotations

from importers.onnx import convert as _convert
from importers.onnx.reader import LoadedModel, read_model
from prover.ir.graph import Graph
from prover.ir.passes import canonicalize as _canonicalize


def import_onnx(source: object, *, canonicalize: bool = True) -> Graph:
    """Import an ONNX model into a validated IR graph.

    Args:
        source: a path, the model's bytes, or an ``onnx.ModelProto``.
        canonicalize: run the canonicalising passes (``prover.ir.passes``).

    Returns:
        The graph; its ``origin`` keeps the ONNX bytes for replay on ONNX Runtime.

    Raises:
        ModelError: unreadable, malformed or truncated model (naming the file), several
            inputs/outputs, symbolic non-batch dims.
        UnsafeModelError: external data outside the model's folder.
        InvalidWeightsError: NaN or Inf weights.
        UnsupportedOperation: an op the importer cannot express (naming it and the node).
        ShapeError: shapes that do not fit (naming the node, op, expected and actual).
    """
    graph = _convert.convert(read_model(source))
    return _canonicalize(graph) if canonicalize else graph


def supported_onnx_ops() -> tuple[str, ...]:
    """The ONNX op types the importer accepts (from its converter table), sorted."""
    return _convert.supported_ops()


def inspect_onnx(source: object) -> list[dict]:
    """Per ONNX node, even when the import as a whole would fail.

    Returns:
        One dict per node: ``name``, ``op_type``, ``shape`` (its first output's IR shape,
        without batch axis; None if unknown), ``constant`` (folded at import),
        ``supported`` (bool) and ``error`` (why its conversion failed, or None).
    """
    return _convert.inspect(read_model(source))


__all__ = ["LoadedModel", "import_onnx", "inspect_onnx", "read_model", "supported_onnx_ops"]
