"""``prover inspect``: what a model contains and what each interpretation supports."""

from __future__ import annotations

from typing import Any

from prover.errors import ProverError
from prover.support import tables


def inspect_model(source: Any) -> dict[str, Any]:
    """Ops, shapes, parameter count and per-domain support of every node of ``source``.

    When the import fails (e.g. an unsupported ONNX op) the report still lists the ONNX
    nodes with their support status, and the error.
    """
    from prover.api import load

    report: dict[str, Any] = {
        "name": str(source),
        "input_shape": None,
        "output_shape": None,
        "parameters": 0,
        "nodes": [],
        "domains": [name for name in tables() if name != "semantics"],
        "error": None,
    }
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        try:
            from importers.onnx import inspect_onnx

            report["onnx_nodes"] = inspect_onnx(source)
        except ProverError as exc:
            report["error"] = str(exc)
            return report
        except ImportError:
            pass
    try:
        graph = load(source)
    except ProverError as exc:
        report["error"] = str(exc)
        return report
    columns = tables()
    report.update(
        name=graph.name,
        input_shape=list(graph.input_shape),
        output_shape=list(graph.output_shape),
        parameters=graph.parameter_count(),
    )
    for node in graph.nodes:
        report["nodes"].append(
            {
                "name": node.name,
                "op": node.op.name,
                "shape": list(graph.shapes[node.name]),
                "attributes": node.op.describe(),
                "source": node.source,
                "support": {
                    name: table.supports(type(node.op))
                    for name, table in columns.items()
                    if name != "semantics"
                },
            }
        )
    return report
